"""Triplet loss (survey section 1.2, eq. (2); Schroff, Kalenichenko, Philbin 2015, FaceNet).

An anchor should be closer to a sample of its class (the positive) than to a sample of
another class (the negative), by a margin ``m``:

    l(X_a, X_p, X_n) = [d_ap^2 + m - d_an^2]_+                          (2)

Defaults follow FaceNet: squared Euclidean distance between L2-normalised embeddings
(so ``d^2`` lies in [0, 4]) and ``m = 0.2``. The distance is a parameter: with
``EuclideanDistance()`` the terms are ``[d_ap + m - d_an]_+`` (Hermans et al. 2017), with
``CosineSimilarity()`` they are ``[s_an + m - s_ap]_+``.

Which triplets: without ``indices_tuple``, every valid triplet of the batch (``a != p``
of one class, ``n`` of another), built from an ``(n, n, n)`` boolean mask: memory grows
as n^3 (16 MB of mask at n = 256, plus the indices of the valid triplets), fine for
the lessons' batches. A miner (``dmlnotes.miners``) picks fewer, more useful triplets;
pairs ``(anchors_p, positives, anchors_n, negatives)`` are combined into every triplet
whose two pairs share their anchor.

Most triplets are trivial (zero loss) once training is under way, which is the survey's
argument for mining: ``last_stats.num_terms`` counts the triplets and
``last_stats.num_active`` those with a non-zero loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..checks import check_non_negative
from ..distances import Distance, default_distance
from ..indices import all_triplet_indices, check_indices_tuple, triplets_from_indices
from .base import LossTerms, MetricLoss


class TripletLoss(MetricLoss):
    """Triplet loss ``[d_ap + m - d_an]_+`` over all valid triplets or a miner's (eq. (2)).

    Args:
        margin: ``m`` (>= 0), default 0.2 as in FaceNet (on squared distances of unit vectors).
        distance: default ``SquaredEuclideanDistance(normalize_embeddings=True)`` (FaceNet);
            ``SquaredEuclideanDistance()`` keeps the embeddings unnormalised, as eq. (2) reads.
        swap: use ``min(d_an, d_pn)`` as the negative distance ("distance swap", Balntas et
            al. 2016, as pytorch-metric-learning's ``swap``): the negative must be far from
            both the anchor and the positive.
        reduction: ``"mean"`` (default): mean over all triplets, zero terms included;
            ``"mean_nonzero"``: mean over triplets with a non-zero loss (what many
            FaceNet-style implementations and pytorch-metric-learning's default
            ``AvgNonZeroReducer`` do); it keeps the gradient from fading as triplets
            become trivial; ``"sum"`` (see :class:`~dmlnotes.losses.base.MetricLoss`).
        warn_if_empty: warn when a batch has no valid triplet (e.g. every label distinct).

    Shapes: embeddings ``(batch, dim)``, labels ``(batch,)``, optional ``indices_tuple`` of
    three (or four) long tensors; returns a scalar.
    """

    def __init__(
        self,
        margin: float = 0.2,
        distance: Distance | None = None,
        swap: bool = False,
        reduction: str = "mean",
        warn_if_empty: bool = False,
    ):
        super().__init__(warn_if_empty=warn_if_empty, reduction=reduction)
        if not isinstance(swap, bool):
            raise ValueError(f"swap must be True or False, got {swap!r}")
        self.margin = check_non_negative("margin", margin)
        self.distance = default_distance(distance)
        self.swap = swap

    def compute_loss(self, embeddings: Tensor, labels: Tensor, indices_tuple) -> Tensor:
        if indices_tuple is None:
            anchors, positives, negatives = all_triplet_indices(labels)
        else:
            anchors, positives, negatives = triplets_from_indices(check_indices_tuple(indices_tuple, labels))
        matrix = self.distance(embeddings)
        anchor_positive = matrix[anchors, positives]
        violation = self.distance.margin_violation(anchor_positive, matrix[anchors, negatives], self.margin)
        if self.swap:
            # The larger violation belongs to the closer of (a, n) and (p, n).
            swapped = self.distance.margin_violation(anchor_positive, matrix[positives, negatives], self.margin)
            violation = torch.maximum(violation, swapped)
        terms = F.relu(violation)
        return LossTerms(terms, what="triplet")

    def extra_repr(self) -> str:
        return f"margin={self.margin}, swap={self.swap}, {super().extra_repr()}"
