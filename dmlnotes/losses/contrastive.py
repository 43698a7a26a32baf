"""Contrastive loss (survey section 1.1, eq. (1); Hadsell, Chopra, LeCun 2006).

Pull same-class pairs together, push different-class pairs at least a margin apart:

    l(X_i, X_j) = y_ij d_ij^2 + (1 - y_ij) [alpha - d_ij^2]_+          (1)

with ``y_ij = 1`` for a positive (same-class) pair and 0 otherwise. Three conventions
are in use; say which one a lesson uses:

* the survey's eq. (1) (default, ``squared=True``): squared Euclidean distance, the
  margin ``alpha`` compares with ``d^2``;
* the library convention (``squared=False``, as pytorch-metric-learning): plain
  Euclidean distance, terms ``[d - pos_margin]_+`` and ``[margin - d]_+``;
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

from ..checks import check_choice, check_finite
from ..distances import Distance, EuclideanDistance, SquaredEuclideanDistance
from ..indices import check_indices_tuple, pairs_from_indices
from .base import LossTerms, MetricLoss



class ContrastiveLoss(MetricLoss):
    """Contrastive loss over pairs: eq. (1) of the survey, averaged over the pairs.

    Args:
        margin: ``alpha``, how far negatives must be: compared with ``d^2`` when
            ``squared=True`` (default 1.0, as pytorch-metric-learning's ``neg_margin``).
        squared: ``True`` (the survey's eq. (1), default): squared Euclidean distance;
            ``False``: plain Euclidean distance (the library convention).
        distance: any ``dmlnotes.distances.Distance`` instead; give either ``distance``
            or ``squared``, not both. Embeddings are not normalised unless the distance says so.
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
        squared: bool | None = None,
        distance: Distance | None = None,
        pos_margin: float = 0.0,
        reduction: str = "mean",
        warn_if_empty: bool = False,
    ):
        super().__init__(warn_if_empty=warn_if_empty, reduction=reduction)
        if distance is not None and squared is not None:
            raise ValueError("give either squared or distance, not both (squared only picks the Euclidean distance)")
        if squared is not None and not isinstance(squared, bool):
            raise ValueError(f"squared must be True or False, got {squared!r}")
        if distance is None:
            distance = EuclideanDistance() if squared is False else SquaredEuclideanDistance()
        elif not isinstance(distance, Distance):
            raise ValueError(f"distance must be a dmlnotes.distances.Distance, got {type(distance).__name__}")
        margin, pos_margin = check_finite("margin", margin), check_finite("pos_margin", pos_margin)
        if distance.is_similarity and margin > pos_margin:
            raise ValueError(
                "with a similarity, negatives must stay below margin and positives reach pos_margin, "
                f"so margin <= pos_margin is required (e.g. margin=0.3, pos_margin=0.9); got {margin} and {pos_margin}"
            )
        if not distance.is_similarity and not 0 <= pos_margin <= margin:
            raise ValueError(f"margins must satisfy 0 <= pos_margin <= margin, got pos_margin={pos_margin}, margin={margin}")
        self.margin = float(margin)
        self.pos_margin = float(pos_margin)
        self.distance = distance

    def compute_loss(self, embeddings: Tensor, labels: Tensor, indices_tuple) -> Tensor:
        matrix = self.distance(embeddings)
        if indices_tuple is None:
            return self._all_pairs_loss(matrix, labels, embeddings)
        anchors_p, positives, anchors_n, negatives = pairs_from_indices(check_indices_tuple(indices_tuple, labels))
        terms = torch.cat([
            self._positive_terms(matrix[anchors_p, positives]),
            self._negative_terms(matrix[anchors_n, negatives]),
        ])
        return LossTerms(terms, what="pair")

    def _all_pairs_loss(self, matrix: Tensor, labels: Tensor, embeddings: Tensor) -> Tensor:
        """Every pair i < j, computed on the whole symmetric matrix: each pair appears twice,
        which leaves the mean unchanged, and no index lists or masks are needed."""
        n = labels.shape[0]
        if n < 2:
            return LossTerms.none(embeddings, "pair")
        same = labels.unsqueeze(0) == labels.unsqueeze(1)
        eye = torch.eye(n, dtype=torch.bool, device=labels.device)
        terms = torch.where(same, self._positive_terms(matrix), self._negative_terms(matrix)).masked_fill(eye, 0.0)
        return LossTerms(terms, what="pair", num_terms=n * (n - 1) // 2, multiplicity=2)

    # margin_violation(closer, farther, 0) = closer - farther for a distance, flipped for a similarity.
    def _positive_terms(self, distances: Tensor) -> Tensor:
        return F.relu(self.distance.margin_violation(distances, self.pos_margin, 0.0))

    def _negative_terms(self, distances: Tensor) -> Tensor:
        return F.relu(self.distance.margin_violation(self.margin, distances, 0.0))

    def extra_repr(self) -> str:
        return f"margin={self.margin}, pos_margin={self.pos_margin}, {super().extra_repr()}"
