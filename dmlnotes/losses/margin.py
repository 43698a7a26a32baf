"""Margin loss (Wu, Manmatha, Smola, Krähenbühl 2017, "Sampling Matters in Deep Embedding Learning").

A contrastive loss whose boundary ``beta`` is learned: positive pairs should be closer
than ``beta - alpha``, negative pairs farther than ``beta + alpha``. Paired with the
distance-weighted sampler (:class:`~dmlnotes.miners.DistanceWeightedMiner`), it matched
or beat the triplet loss in the paper.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import check_class_labels, check_finite, check_non_negative, check_positive, check_positive_int
from ..distances import EuclideanDistance
from ..indices import check_indices_tuple, label_masks, pairs_from_indices
from .base import LossTerms, MetricLoss


class MarginLoss(MetricLoss):
    r"""``[alpha + y_ij (D_ij - beta)]_+`` over positive (``y = 1``) and negative (``y = -1``) pairs.

    ``D`` is the plain Euclidean distance between L2-normalised embeddings (the paper's),
    ``alpha`` the margin (0.2) and ``beta`` a learnable boundary, initial value 1.2 (the
    paper's and its code's). With ``nu > 0`` the loss adds ``nu * beta`` (the paper's
    regulariser ``nu (beta^(0) + beta^(class))``; ``beta`` grows otherwise), as a penalty
    after the reduction: ``nu * beta`` for a shared ``beta``, ``nu`` times the mean of
    ``beta`` over the pairs' anchors for one ``beta`` per class.

    Pairs: without a miner, every ordered positive and negative pair of the batch; with a
    miner's triplets ``(a, p, n)``, the pairs ``(a, p)`` and ``(a, n)`` of each triplet
    (a pair shared by several triplets counts once per triplet, as in the paper's code
    and pytorch-metric-learning); with a pair tuple, its pairs.

    Reduction: ``"mean_nonzero"`` by default, the paper's code: the sum of the pair terms
    divided by the number of non-zero ones (pytorch-metric-learning's ``MarginLoss``
    divides by the same count).

    Args:
        margin: ``alpha > 0``.
        beta: initial ``beta``.
        learn_beta: train ``beta`` (default True; give ``loss_fn.parameters()`` or
            :meth:`parameter_group` to the optimiser).
        num_classes: one ``beta`` per class (labels in ``0 .. num_classes-1``, the anchor's
            class picks it: the paper's ``beta^(0) + beta^(class)`` as one number per class);
            ``None`` (default): one shared ``beta`` (the paper's ``beta^(0)``).
        nu: ``nu >= 0``, weight of the ``beta`` regulariser (default 0, as in
            pytorch-metric-learning).
        warn_if_empty: warn when the batch has no pair.
        reduction: ``"mean_nonzero"`` (default), ``"mean"`` or ``"sum"`` over the pair terms.

    Differences from pytorch-metric-learning's ``MarginLoss``: its ``beta`` is fixed unless
    ``learn_beta=True`` (here learned by default, as in the paper); without a miner it
    uses the pairs of all triplets (each pair repeated), here each pair once; its
    regulariser for per-class ``beta`` is divided by its pair count, not averaged.
    """

    def __init__(
        self,
        margin: float = 0.2,
        beta: float = 1.2,
        learn_beta: bool = True,
        num_classes: int | None = None,
        nu: float = 0.0,
        warn_if_empty: bool = False,
        reduction: str = "mean_nonzero",
    ):
        super().__init__(warn_if_empty=warn_if_empty, reduction=reduction)
        self.margin = check_positive("margin", margin)
        self.nu = check_non_negative("nu", nu)
        self.num_classes = None if num_classes is None else check_positive_int("num_classes", num_classes)
        initial = torch.full((1 if num_classes is None else self.num_classes,), check_finite("beta", beta))
        self.beta = nn.Parameter(initial, requires_grad=bool(learn_beta))
        self.distance = EuclideanDistance(normalize_embeddings=True)

    def parameter_group(self, lr: float) -> dict:
        """``{"params": [beta], "lr": lr}``, a parameter group for ``torch.optim``."""
        return {"params": [self.beta], "lr": check_positive("lr", lr)}

    def compute_loss(self, embeddings: Tensor, labels: Tensor, indices_tuple) -> LossTerms:
        if self.num_classes is not None:
            labels = check_class_labels(labels, self.num_classes)
        if indices_tuple is None:
            positive_pairs, negative_pairs = label_masks(labels)
            anchors_p, positives = torch.where(positive_pairs)
            anchors_n, negatives = torch.where(negative_pairs)
        else:
            anchors_p, positives, anchors_n, negatives = pairs_from_indices(check_indices_tuple(indices_tuple, labels))
        if anchors_p.numel() + anchors_n.numel() == 0:
            return LossTerms.none(embeddings, "pair")
        distances = self.distance(embeddings)
        beta = self.beta.to(device=embeddings.device, dtype=embeddings.dtype)
        beta_p, beta_n = (
            (beta[0], beta[0]) if self.num_classes is None else (beta[labels[anchors_p]], beta[labels[anchors_n]])
        )
        positive_terms = F.relu(self.margin + (distances[anchors_p, positives] - beta_p))
        negative_terms = F.relu(self.margin - (distances[anchors_n, negatives] - beta_n))
        penalty = None
        if self.nu > 0:
            anchor_betas = beta if self.num_classes is None else beta[labels[torch.cat([anchors_p, anchors_n])]]
            penalty = self.nu * anchor_betas.mean()
        return LossTerms(torch.cat([positive_terms, negative_terms]), what="pair", penalty=penalty)

    def extra_repr(self) -> str:
        classes = "" if self.num_classes is None else f", num_classes={self.num_classes}"
        return (
            f"margin={self.margin}, beta={self.beta.detach().tolist()}{classes}, nu={self.nu}, "
            f"learn_beta={self.beta.requires_grad}, {super().extra_repr()}"
        )
