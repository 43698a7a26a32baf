"""Contrastive loss (survey section 1.1, eq. (1); Hadsell, Chopra, LeCun 2006).

Pull same-class pairs together, push different-class pairs at least a margin apart:

    l(X_i, X_j) = y_ij d_ij^2 + (1 - y_ij) [alpha - d_ij^2]_+          (1)

with ``y_ij = 1`` for a positive (same-class) pair and 0 otherwise. Three conventions
are in use; say which one a lesson uses:

* the survey's eq. (1) (default, ``distance=SquaredEuclideanDistance()``): squared
  Euclidean distance, the margin ``alpha`` compares with ``d^2``;
* the library convention (``distance=EuclideanDistance()``, as pytorch-metric-learning):
  plain Euclidean distance, terms ``[d - pos_margin]_+`` and ``[margin - d]_+``;
* Hadsell et al.'s original ``1/2 d^2 + 1/2 [m - d]_+^2`` (plain distance, squared
  hinge) is not offered; it has the survey's positive term up to the factor 1/2 and a
  smoother negative term.

In general, with ``D`` the chosen distance, a positive pair costs ``[D - pos_margin]_+``
(``pos_margin = 0`` gives eq. (1)'s ``d^2``) and a negative pair ``[margin - D]_+``.
With a similarity such as ``CosineSimilarity()`` the signs flip: ``[pos_margin - s]_+``
and ``[s - margin]_+`` (positives should reach ``pos_margin``, negatives stay below ``margin``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..checks import check_finite
from ..distances import Distance, SquaredEuclideanDistance, check_distance
from ..indices import check_indices_tuple, pairs_from_indices
from .base import LossTerms, MetricLoss


class ContrastiveLoss(MetricLoss):
    """Contrastive loss over pairs: eq. (1) of the survey, averaged over the pairs.

    Args:
        margin: ``alpha``, how far negatives must be, in the distance's units: compared
            with ``d^2`` by default (1.0, as pytorch-metric-learning's ``neg_margin``).
        distance: a ``dmlnotes.distances.Distance``; default ``SquaredEuclideanDistance()``
            (the survey's eq. (1)); ``EuclideanDistance()`` is the library convention.
            Embeddings are normalised only if the distance says so (``normalize_embeddings=True``).
        pos_margin: positives cost nothing below this distance (default 0.0, as in eq. (1)).
        reduction: ``"mean"`` (default): mean over all pairs, positive and negative
            together, zero terms included; ``"mean_nonzero"``: mean over the pairs with a
            non-zero term; ``"sum"``. (pytorch-metric-learning averages positive and negative
            terms separately and adds the two means; this loss does not.)
        warn_if_empty: warn when a batch has no pair.

    Pairs: without ``indices_tuple`` every unordered pair ``i < j`` of the batch, once
    (the mean equals the mean over ordered pairs ``i != j``). With a miner's pairs
    ``(anchors_p, positives, anchors_n, negatives)`` exactly those pairs; triplets
    ``(a, p, n)`` become the pairs ``(a, p)`` and ``(a, n)``, one of each per triplet.

    Shapes: embeddings ``(batch, dim)``, labels ``(batch,)``; returns a scalar.
    ``last_stats`` counts the pairs and the pairs with a non-zero term.
    """

    def __init__(
        self,
        margin: float = 1.0,
        distance: Distance | None = None,
        pos_margin: float = 0.0,
        reduction: str = "mean",
        warn_if_empty: bool = False,
    ):
        super().__init__(warn_if_empty=warn_if_empty, reduction=reduction)
        distance = check_distance(distance, SquaredEuclideanDistance())
        margin, pos_margin = check_finite("margin", margin), check_finite("pos_margin", pos_margin)
        if distance.is_similarity and margin > pos_margin:
            raise ValueError(
                "with a similarity, negatives must stay below margin and positives reach pos_margin, "
                f"so margin <= pos_margin is required (e.g. margin=0.3, pos_margin=0.9); got {margin} and {pos_margin}"
            )
        if not distance.is_similarity and not 0 <= pos_margin <= margin:
            raise ValueError(
                f"margins must satisfy 0 <= pos_margin <= margin, got pos_margin={pos_margin}, margin={margin}"
            )
        self.margin = float(margin)
        self.pos_margin = float(pos_margin)
        self.distance = distance

    def compute_loss(self, embeddings: Tensor, labels: Tensor, indices_tuple) -> Tensor:
        matrix = self.distance(embeddings)
        if indices_tuple is None:
            return self._all_pairs_loss(matrix, labels, embeddings)
        anchors_p, positives, anchors_n, negatives = pairs_from_indices(check_indices_tuple(indices_tuple, labels))
        terms = torch.cat(
            [
                self._positive_terms(matrix[anchors_p, positives]),
                self._negative_terms(matrix[anchors_n, negatives]),
            ]
        )
        return LossTerms(terms, what="pair")

    def _all_pairs_loss(self, matrix: Tensor, labels: Tensor, embeddings: Tensor) -> Tensor:
        """Every pair i < j, computed on the whole symmetric matrix: each pair appears twice,
        which leaves the mean unchanged, and no index lists or masks are needed."""
        n = labels.shape[0]
        if n < 2:
            return LossTerms.none(embeddings, "pair")
        same = labels.unsqueeze(0) == labels.unsqueeze(1)
        # closer_than(D, b) = -farther_than(D, b): one expression serves both kinds of pair,
        # [sign * farther_than(D, bound)]_+ with sign +1 for positives, -1 for negatives and
        # 0 on the diagonal (a sample is no pair with itself): three differentiable operations.
        bound = torch.full_like(matrix, self.margin).masked_fill_(same, self.pos_margin)
        sign = torch.full_like(matrix, -1.0).masked_fill_(same, 1.0).fill_diagonal_(0.0)
        terms = F.relu(sign * self.distance.farther_than(matrix, bound))
        return LossTerms(terms, what="pair", num_terms=n * (n - 1) // 2, multiplicity=2)

    def _positive_terms(self, distances: Tensor) -> Tensor:
        return F.relu(self.distance.farther_than(distances, self.pos_margin))

    def _negative_terms(self, distances: Tensor) -> Tensor:
        return F.relu(self.distance.closer_than(distances, self.margin))

    def extra_repr(self) -> str:
        return f"margin={self.margin}, pos_margin={self.pos_margin}, {super().extra_repr()}"
