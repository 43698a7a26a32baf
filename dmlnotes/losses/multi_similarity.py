"""Multi-similarity loss (Wang, Han, Huang, Dong, Scott 2019, "Multi-Similarity Loss with General
Pair Weighting"); a pair-weighting loss beyond the survey's list (after its section 1.9).

Per anchor ``i``, with cosine similarities ``s``, positives ``P_i`` and negatives ``N_i``::

    L_i = 1/alpha log(1 + sum_{p in P_i} exp(-alpha (s_ip - lambda)))
        + 1/beta  log(1 + sum_{n in N_i} exp( beta (s_in - lambda)))

    L = 1/m sum_i L_i          (m: the batch size)

Each pair's gradient weight is a softmax over the anchor's pairs: a negative counts more
the more similar it is to the anchor, both absolutely (self-similarity) and relative to
the anchor's other negatives (the log-sum-exp). The paper pairs the loss with its own miner
(:class:`~dmlnotes.miners.MultiSimilarityMiner`), which keeps the pairs that violate the
anchor's hardest opposite pair by a margin ``epsilon``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..checks import check_finite, check_positive
from ..distances import CosineSimilarity, Distance, check_distance
from ..indices import check_indices_tuple, pairs_from_indices
from .base import LossTerms, MetricLoss, label_masks

LOW_PRECISION = (torch.float16, torch.bfloat16)


def check_similarity(distance, name: str) -> Distance:
    """The loss's similarity (default ``CosineSimilarity()``); a distance is refused: the
    thresholds of these losses are similarities in [-1, 1]."""
    distance = check_distance(distance, CosineSimilarity())
    if not distance.is_similarity:
        raise ValueError(
            f"{name} weighs pairs by a similarity in [-1, 1]: distance must be a similarity such as "
            f"CosineSimilarity(), got {type(distance).__name__}"
        )
    return distance


def precise_similarities(distance: Distance, embeddings: Tensor) -> Tensor:
    """The similarity matrix, in float32 for a 16-bit batch: scales such as 50 or 256 turn a
    float16 rounding error of 1e-3 into 0.05-0.25 in an exponent."""
    if embeddings.dtype in LOW_PRECISION:
        return distance(embeddings.float())
    return distance(embeddings)


def pair_masks(labels: Tensor, indices_tuple) -> tuple[Tensor, Tensor]:
    """Directed ``(n, n)`` masks of the positive and negative pairs: every pair of the batch, or
    only those a miner listed (row = anchor). A pair listed twice counts once."""
    positive, negative = label_masks(labels)
    if indices_tuple is None:
        return positive, negative
    anchors_p, positives, anchors_n, negatives = pairs_from_indices(check_indices_tuple(indices_tuple, labels))
    listed_positive = torch.zeros_like(positive)
    listed_positive[anchors_p, positives] = True
    listed_negative = torch.zeros_like(negative)
    listed_negative[anchors_n, negatives] = True
    return positive & listed_positive, negative & listed_negative


def log1p_sum_exp(logits: Tensor, mask: Tensor) -> Tensor:
    """Per row, ``log(1 + sum_{j in mask} exp(logits_j))`` without overflow: a log-sum-exp with
    an extra zero logit. A row without entries gives exactly 0."""
    masked = logits.masked_fill(~mask, float("-inf"))
    return torch.logsumexp(torch.cat([masked, masked.new_zeros(masked.shape[0], 1)], dim=1), dim=1)


class MultiSimilarityLoss(MetricLoss):
    """Multi-similarity loss: per anchor, soft weights on its positive and negative pairs.

    Conventions:
        * ``s`` is the cosine similarity (default ``distance=CosineSimilarity()``, the paper's);
          only similarities are accepted.
        * One term per anchor of the batch; an anchor without positives (negatives) has no
          positive (negative) part, and ``"mean"`` divides by the batch size, as the paper's
          ``1/m`` and its reference code (``sum(loss) / batch_size``) do.
        * Batches in float16 or bfloat16 are computed in float32 and returned in their dtype.

    Defaults: ``alpha=2``, ``beta=50``, ``base=0.5`` (``lambda``), the values of the course's
    technical notes for Wang et al.; the paper's released configurations tune them per data
    set. pytorch-metric-learning's ``MultiSimilarityLoss(alpha=2, beta=50, base=0.5)``
    has the same defaults, the same per-anchor form and the same mean over the batch: the
    values agree (tests). Its miner ``MultiSimilarityMiner(epsilon=0.1)`` matches ours.
    The paper's code skips an anchor whose mined positives or negatives are empty; after its
    miner an anchor keeps positives exactly when it keeps negatives, so nothing changes.
    Without the miner an anchor without positives still pays its negative part (the formula,
    and pytorch-metric-learning).

    Args:
        alpha: ``alpha > 0``, the positive scale.
        beta: ``beta > 0``, the negative scale.
        base: ``lambda``, the similarity threshold (in [-1, 1] for the cosine).
        distance: a similarity (default ``CosineSimilarity()``).
        reduction: ``"mean"`` (default), ``"mean_nonzero"`` or ``"sum"`` over the anchors.
        warn_if_empty: warn when the batch (or the miner's tuple) has no pair.

    Shapes: embeddings ``(batch, dim)``, labels ``(batch,)``; returns a scalar.
    ``indices_tuple``: pairs ``(anchors_p, positives, anchors_n, negatives)`` (or triplets,
    taken as their two pairs) restrict each anchor's sums to the listed pairs.
    """

    def __init__(
        self,
        alpha: float = 2.0,
        beta: float = 50.0,
        base: float = 0.5,
        distance: Distance | None = None,
        reduction: str = "mean",
        warn_if_empty: bool = False,
    ):
        super().__init__(warn_if_empty=warn_if_empty, reduction=reduction)
        self.alpha = check_positive("alpha", alpha)
        self.beta = check_positive("beta", beta)
        self.base = check_finite("base", base)
        self.distance = check_similarity(distance, type(self).__name__)

    def compute_loss(self, embeddings: Tensor, labels: Tensor, indices_tuple) -> LossTerms:
        positive, negative = pair_masks(labels, indices_tuple)
        if not (positive.any() or negative.any()):
            return LossTerms.none(embeddings, "pair")
        similarities = precise_similarities(self.distance, embeddings)
        positive_part = log1p_sum_exp(-self.alpha * (similarities - self.base), positive) / self.alpha
        negative_part = log1p_sum_exp(self.beta * (similarities - self.base), negative) / self.beta
        return LossTerms((positive_part + negative_part).to(embeddings.dtype), what="pair")

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}, base={self.base}, {super().extra_repr()}"
