"""Circle loss (Sun, Cheng, Zhang, Zhang, Zheng, Wang, Wei 2020, "Circle Loss: A Unified
Perspective of Pair Similarity Optimization"), pair-wise form; a pair-weighting loss
beyond the survey's list.

Per anchor with cosine similarities ``s_p`` to its positives and ``s_n`` to its negatives::

    L = softplus( LSE_n(gamma a_n (s_n - Delta_n)) + LSE_p(-gamma a_p (s_p - Delta_p)) )

    a_p = [O_p - s_p]_+,  a_n = [s_n - O_n]_+     (weights, not differentiated)
    O_p = 1 + m,  O_n = -m,  Delta_p = 1 - m,  Delta_n = m

Each similarity gets its own weight, larger the farther it is from its optimum ``O``: the
decision boundary is a circle in the ``(s_n, s_p)`` plane instead of the line
``s_p - s_n = m`` of a margin loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..checks import check_non_negative, check_positive
from ..distances import Distance
from .base import LossTerms, MetricLoss
from .multi_similarity import check_similarity, pair_masks, precise_similarities


def masked_logsumexp(logits: Tensor, mask: Tensor) -> Tensor:
    """Per row, the log-sum-exp over the masked-in entries; a row without entries gives 0
    (the caller drops it), so no ``-inf - -inf`` reaches the backward pass."""
    has_entry = mask.any(dim=1, keepdim=True)
    masked = logits.masked_fill(~mask, float("-inf")).where(has_entry, torch.zeros_like(logits))
    return torch.logsumexp(masked, dim=1)


class CircleLoss(MetricLoss):
    """Circle loss over each anchor's positive and negative pairs.

    Conventions:
        * ``s`` is the cosine similarity (default ``distance=CosineSimilarity()``, the paper's).
        * One term per anchor that has at least one positive and one negative (listed by the
          miner, if given); ``"mean"`` averages over those anchors. The weights ``a_p, a_n``
          are constants in the backward pass, as in the paper.
        * Batches in float16 or bfloat16 are computed in float32 and returned in their dtype;
          ``gamma = 256`` stays finite through log-sum-exp and softplus.

    Defaults: ``margin=0.25``, ``gamma=256``, the paper's setting for face recognition (its
    settings range over m = 0.25-0.4 and gamma = 80-256 across tasks; m = 0.4, gamma = 80 is
    the fine-grained retrieval one). pytorch-metric-learning's ``CircleLoss`` defaults to
    ``m=0.4, gamma=80``; with the same ``m`` and ``gamma`` its value equals ours (tests), except
    that its ``AvgNonZeroReducer`` drops anchors whose term underflows to exactly 0 while
    ``"mean"`` keeps them (``reduction="mean_nonzero"`` is its reducer).

    Args:
        margin: ``m >= 0``, the relaxation (in units of similarity).
        gamma: ``gamma > 0``, the scale.
        distance: a similarity (default ``CosineSimilarity()``).
        reduction: ``"mean"`` (default), ``"mean_nonzero"`` or ``"sum"`` over the anchors.
        warn_if_empty: warn when no anchor has both a positive and a negative.

    Shapes: embeddings ``(batch, dim)``, labels ``(batch,)``; returns a scalar.
    ``indices_tuple``: pairs ``(anchors_p, positives, anchors_n, negatives)`` (or triplets,
    taken as their two pairs) restrict each anchor's sums to the listed pairs.
    """

    def __init__(
        self,
        margin: float = 0.25,
        gamma: float = 256.0,
        distance: Distance | None = None,
        reduction: str = "mean",
        warn_if_empty: bool = False,
    ):
        super().__init__(warn_if_empty=warn_if_empty, reduction=reduction)
        self.margin = check_non_negative("margin", margin)
        self.gamma = check_positive("gamma", gamma)
        self.distance = check_similarity(distance, type(self).__name__)

    def compute_loss(self, embeddings: Tensor, labels: Tensor, indices_tuple) -> LossTerms:
        positive, negative = pair_masks(labels, indices_tuple)
        anchors = positive.any(dim=1) & negative.any(dim=1)
        if not anchors.any():
            return LossTerms.none(embeddings, "anchor with a positive and a negative")
        similarities = precise_similarities(self.distance, embeddings)
        constant = similarities.detach()
        positive_weight = F.relu(1.0 + self.margin - constant)
        negative_weight = F.relu(constant + self.margin)
        positive_logits = -self.gamma * positive_weight * (similarities - (1.0 - self.margin))
        negative_logits = self.gamma * negative_weight * (similarities - self.margin)
        summed = masked_logsumexp(positive_logits, positive) + masked_logsumexp(negative_logits, negative)
        terms = F.softplus(summed[anchors])
        return LossTerms(terms.to(embeddings.dtype), what="anchor with a positive and a negative")

    def extra_repr(self) -> str:
        return f"margin={self.margin}, gamma={self.gamma}, {super().extra_repr()}"
