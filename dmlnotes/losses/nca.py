"""Neighbourhood components analysis (NCA) as a loss on a batch (Goldberger et al. 2004).

Each sample i picks a neighbour j != i at random with probability
``p_ij = exp(-s d_ij^2) / sum_{k != i} exp(-s d_ik^2)``; NCA maximises the probability
that the neighbour has i's class. The loss is ``-log sum_{j: y_j = y_i} p_ij`` averaged
over the samples that have a positive in the batch. With a linear map ``f(x) = Lx`` this
is classic NCA, which learns the Mahalanobis metric ``M = L^T L``; with a network it is
"deep" NCA. The survey cites NCA as the template of the N-pair loss (eq. 4) and of the
proxy loss (eq. 13).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..checks import check_positive
from ..distances import Distance, SquaredEuclideanDistance, check_distance
from .base import LossTerms, MetricLoss, flush_subnormal_gradients, label_masks


class NCALoss(MetricLoss):
    """Stochastic nearest-neighbour loss over a batch.

    Args:
        scale: ``s``, multiplies the negative squared distances before the softmax
            (pytorch-metric-learning's ``softmax_scale``; default 1 as there).
        warn_if_empty: warn when no sample has a positive in the batch.
        reduction: ``"mean"`` (default), ``"mean_nonzero"`` or ``"sum"`` over the terms
            (see :class:`~dmlnotes.losses.base.MetricLoss`).
        distance: a ``dmlnotes.distances.Distance``; the logits are ``-s d`` (``s * sim``
            for a similarity). Default ``SquaredEuclideanDistance()``: squared Euclidean
            on the embeddings as given (not normalised), as Goldberger et al.

    Computed
    in the log domain, so an anchor whose positives are all far away (probability below
    float precision) still counts with its true, large loss; pytorch-metric-learning's
    ``NCALoss`` drops such anchors. Subnormal gradient entries (probabilities below about
    ``1e-38``) are set to zero in the backward pass: the same gradient at float precision,
    without the slow subnormal arithmetic on CPUs.
    Shapes: embeddings ``(n, dim)``, labels ``(n,)``; returns a scalar.
    """

    def __init__(
        self, scale: float = 1.0, warn_if_empty: bool = False, reduction: str = "mean", distance: Distance | None = None
    ):
        super().__init__(warn_if_empty, reduction=reduction)
        self.scale = check_positive("scale", scale)
        self.distance = check_distance(distance, SquaredEuclideanDistance())

    takes_indices_tuple = False  # NCA sums over every neighbour: a miner's subset is not its loss

    def compute_loss(self, embeddings: Tensor, labels: Tensor, indices_tuple=None) -> Tensor:
        positive, _ = label_masks(labels)
        num_positives = positive.sum(dim=1)
        has_positive = num_positives > 0
        if not has_positive.any():
            return LossTerms.none(embeddings, "positive pair")
        eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
        logits = self.distance.as_logits(self.distance(embeddings), self.scale).masked_fill(eye, float("-inf"))
        logits = flush_subnormal_gradients(logits)  # far-apart points: exp(-d^2) is subnormal
        # -log sum_{j in P(i)} p_ij = logsumexp_{k != i} logits_ik - logsumexp_{j in P(i)} logits_ij.
        # Each row's positives (at most the largest class size) are gathered instead of
        # masking the whole matrix: their log-sum-exp then costs O(n K), not O(n^2).
        columns = positive.to(torch.uint8).topk(int(num_positives.max()), dim=1).indices  # positives first
        is_real = torch.arange(columns.shape[1], device=labels.device) < num_positives.unsqueeze(1)
        positive_logits = logits.gather(1, columns).masked_fill(~is_real, float("-inf"))
        terms = torch.logsumexp(logits, dim=1) - torch.logsumexp(positive_logits, dim=1)
        return LossTerms(terms[has_positive], what="anchor with a positive")

    def extra_repr(self) -> str:
        return f"scale={self.scale}, {super().extra_repr()}"
