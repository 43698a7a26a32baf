"""Binomial deviance loss (Yi, Lei, Liao, Li 2014, "Deep Metric Learning for Person
Re-Identification"); a pair-weighting loss beyond the survey's list.

Each pair with cosine similarity ``s`` costs its binomial deviance::

    l_ij = log(1 + exp(-alpha (s_ij - beta) m_ij)),   m_ij = +1 (positive), -C (negative)

a softplus of the margin violation: positives are pulled above ``beta``, negatives pushed
below it, with the negatives' slope ``alpha C`` much steeper (there are many more negatives,
and most are easy). Positive and negative pairs are averaged separately and added.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..checks import check_finite, check_positive
from ..distances import Distance
from .base import LossTerms, MetricLoss
from .multi_similarity import check_similarity, pair_masks, precise_similarities


class BinomialDevianceLoss(MetricLoss):
    """Binomial deviance over each anchor's positive and negative pairs.

    Conventions:
        * ``s`` is the cosine similarity (default ``distance=CosineSimilarity()``, Yi et al.'s).
        * Per anchor, the mean deviance of its positive pairs plus the mean deviance of its
          negative pairs (a side without pairs adds 0); ``"mean"`` averages over the anchors
          with at least one pair. Yi et al. weight the pairs by ``1/n_pos`` and ``1/n_neg`` over
          the whole batch; the per-anchor form keeps one term per anchor like the other pair
          losses here (and their ``reduction`` and ``last_stats``). On a class-balanced batch
          (every anchor with the same numbers of positives and negatives) the two are equal.
        * The negatives' term is ``softplus(alpha C (s - beta))``, not divided by ``C``.
        * Batches in float16 or bfloat16 are computed in float32 and returned in their dtype.

    Defaults: ``alpha=2``, ``beta=0.5``, ``cost=25`` (``C``): the course's technical notes for
    Yi et al., and the values of public reimplementations (negative slope ``alpha C = 50``, the
    multi-similarity loss's ``beta``).
    pytorch-metric-learning has no binomial deviance loss.

    Args:
        alpha: ``alpha > 0``, the slope.
        beta: the similarity threshold (in [-1, 1] for the cosine).
        cost: ``C > 0``, the negatives' cost weight.
        distance: a similarity (default ``CosineSimilarity()``).
        reduction: ``"mean"`` (default), ``"mean_nonzero"`` or ``"sum"`` over the anchors.
        warn_if_empty: warn when the batch (or the miner's tuple) has no pair.

    Shapes: embeddings ``(batch, dim)``, labels ``(batch,)``; returns a scalar.
    ``indices_tuple``: pairs ``(anchors_p, positives, anchors_n, negatives)`` (or triplets,
    taken as their two pairs) restrict each anchor's means to the listed pairs.
    """

    def __init__(
        self,
        alpha: float = 2.0,
        beta: float = 0.5,
        cost: float = 25.0,
        distance: Distance | None = None,
        reduction: str = "mean",
        warn_if_empty: bool = False,
    ):
        super().__init__(warn_if_empty=warn_if_empty, reduction=reduction)
        self.alpha = check_positive("alpha", alpha)
        self.beta = check_finite("beta", beta)
        self.cost = check_positive("cost", cost)
        self.distance = check_similarity(distance, type(self).__name__)

    def compute_loss(self, embeddings: Tensor, labels: Tensor, indices_tuple) -> LossTerms:
        positive, negative = pair_masks(labels, indices_tuple)
        anchors = positive.any(dim=1) | negative.any(dim=1)
        if not anchors.any():
            return LossTerms.none(embeddings, "pair")
        similarities = precise_similarities(self.distance, embeddings)
        positive_deviance = F.softplus(-self.alpha * (similarities - self.beta))
        negative_deviance = F.softplus(self.alpha * self.cost * (similarities - self.beta))
        terms = _masked_mean(positive_deviance, positive) + _masked_mean(negative_deviance, negative)
        return LossTerms(terms[anchors].to(embeddings.dtype), what="pair")

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}, cost={self.cost}, {super().extra_repr()}"


def _masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Per row, the mean of the masked-in entries (0 for a row without any)."""
    count = mask.sum(dim=1).clamp_min(1)
    return torch.where(mask, values, torch.zeros_like(values)).sum(dim=1) / count
