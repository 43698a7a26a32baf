"""Ranked list loss (Wang, Hua, Kodirov, Hu, Garnier, Robertson 2019; survey section 1.9).

Every sample of the batch is a query and the rest of the batch its ranked list. The loss
asks the list to be split by two boundaries: positives within ``alpha - m`` of the query,
negatives beyond ``alpha``, so a margin ``m`` separates the two sets. Positives are not
pulled all the way together: a class may keep its shape inside a ball of radius
``alpha - m``. The survey mentions the loss in one sentence (section 1.9, no equation);
the formulas below are the paper's (CVPR 2019, eqs. (1)-(7)).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..checks import check_finite, check_non_negative, check_positive
from ..distances import Distance, EuclideanDistance, check_distance
from .base import LossTerms, MetricLoss, label_masks


class RankedListLoss(MetricLoss):
    r"""Ranked list loss: per query, violating positives pulled in, violating negatives pushed out.

    For a query ``i`` with distances ``d_ij`` to the other samples of the batch:

    .. math::
        P^*_i &= \{j \ne i: y_j = y_i,\ d_{ij} > \alpha - m\}, \qquad
        N^*_i = \{j: y_j \ne y_i,\ d_{ij} < \alpha\} \\
        L_P(i) &= \frac{1}{|P^*_i|} \sum_{j \in P^*_i} \big(d_{ij} - (\alpha - m)\big) \\
        L_N(i) &= \sum_{j \in N^*_i} \frac{w_{ij}}{\sum_{k \in N^*_i} w_{ik}} (\alpha - d_{ij}),
        \qquad w_{ij} = \exp\big(T_n (\alpha - d_{ij})\big) \\
        L(i) &= L_P(i) + \lambda\, L_N(i)

    and the batch loss is the mean of ``L(i)`` over all ``N`` queries (the paper's
    ``1/N sum_i``). An empty set contributes 0 (``0/0`` is taken as 0).

    Conventions:
        * Distance: Euclidean on L2-normalised embeddings (default
          ``distance=EuclideanDistance(normalize_embeddings=True)``, as the paper), so
          ``d`` lies in ``[0, 2]``. ``alpha`` and ``margin`` are in the distance's units
          (give ``SquaredEuclideanDistance`` and they compare with ``d^2``). With a
          similarity (``CosineSimilarity``) the roles turn round: negatives must fall
          below ``alpha``, positives rise above ``alpha + margin``, and
          ``w = exp(T_n (s - alpha))``.
        * Positives are weighted uniformly (the CVPR paper's loss; the journal version's
          positive weighting ``exp(T_p (d - (alpha - m)))`` is not implemented).
        * The weights are a softmax of ``T_n (alpha - d)`` over the violating negatives,
          computed after subtracting the row's largest exponent, so any ``T_n`` stays
          finite (also in float16).
        * ``weights_as_constants=True`` (default): the weights only say how much each
          violating negative's push counts, as in the gradient the paper derives (``w_ij``
          multiplies each pair's gradient as a constant). ``False`` differentiates through
          them as pytorch-metric-learning does; the gradient of a softmax-weighted mean then
          *pulls in* negatives whose violation is below ``L_N(i) - 1/T_n``: moving one inward
          raises its weight, and more weight on a value below the mean lowers the mean more
          than the larger violation raises it.
        * Reduction: ``"mean"`` divides by ``N``, every query counted, also one without any
          violating pair (its term is 0) or without any positive in the batch (it still
          has negatives). ``"mean_nonzero"`` divides by the queries with a non-zero term.
        * No miner: the loss mines its own sets ``P*`` and ``N*`` from all pairs, so an
          ``indices_tuple`` is refused.

    Defaults (the paper's CUB-200 setting, 512-d normalised embeddings): ``alpha = 1.2``,
    ``margin = 0.4`` (the paper also reports 0.2), ``T_n = 10``, ``lambda = 1`` ("the two
    objectives treated equally").

    pytorch-metric-learning's ``RankedListLoss(margin, Tn, imbalance=0.5, alpha)`` returns
    ``(1 - imbalance) L_P + imbalance L_N``: half of ours at ``imbalance=0.5`` and
    ``negative_weight=1``; its denominators add ``1e-5`` per column of the batch (a relative
    difference near ``1e-5 N / |P*_i|``), its weights are differentiated
    (``weights_as_constants=False``) and its default ``alpha`` is ``1 + margin / 2``.

    Args:
        alpha: the negatives' boundary ``alpha`` (> 0 for a distance).
        margin: ``m`` in ``[0, alpha]``: positives must lie within ``alpha - m``.
        negative_temperature: ``T_n >= 0``, multiplies ``alpha - d`` in the weights; 0 weights
            the violating negatives uniformly, large values keep the hardest one only.
        negative_weight: ``lambda >= 0``, the weight of ``L_N``.
        weights_as_constants: stop the gradient through ``w_ij`` (see above).
        distance: a ``dmlnotes.distances.Distance`` (default
            ``EuclideanDistance(normalize_embeddings=True)``).
        warn_if_empty: warn when the batch has no query (an empty batch).
        reduction: ``"mean"`` (default), ``"mean_nonzero"`` or ``"sum"`` over the queries.

    Shapes:
        embeddings ``(N, dim)``, labels ``(N,)`` -> scalar. ``last_stats.num_terms`` is ``N``,
        ``num_active`` the queries with a violating pair. Memory and time ``O(N^2)``.
    """

    takes_indices_tuple = False
    compares_with = "every other sample of the batch (it mines its own violating pairs)"

    def __init__(
        self,
        alpha: float = 1.2,
        margin: float = 0.4,
        negative_temperature: float = 10.0,
        negative_weight: float = 1.0,
        weights_as_constants: bool = True,
        distance: Distance | None = None,
        warn_if_empty: bool = False,
        reduction: str = "mean",
    ):
        super().__init__(warn_if_empty, reduction=reduction)
        self.distance = check_distance(distance, EuclideanDistance(normalize_embeddings=True))
        self.margin = check_non_negative("margin", margin)
        if self.distance.is_similarity:
            self.alpha = check_finite("alpha", alpha)
        else:
            self.alpha = check_positive("alpha", alpha)
            if self.margin > self.alpha:
                raise ValueError(
                    f"margin must be at most alpha (positives within alpha - margin >= 0), got {margin!r} > {alpha!r}"
                )
        self.negative_temperature = check_non_negative("negative_temperature", negative_temperature)
        self.negative_weight = check_non_negative("negative_weight", negative_weight)
        self.weights_as_constants = bool(weights_as_constants)

    @property
    def positive_boundary(self) -> float:
        """Where positives must be: ``alpha - margin`` for a distance, ``alpha + margin`` for a similarity."""
        return self.alpha + self.margin if self.distance.is_similarity else self.alpha - self.margin

    def compute_loss(self, embeddings: Tensor, labels: Tensor, indices_tuple=None) -> LossTerms:
        matrix = self.distance(embeddings)
        positive, negative = label_masks(labels)
        # How far each pair is on the wrong side of its boundary (> 0: in P* or N*).
        positive_violation = self.distance.farther_than(matrix, self.positive_boundary)
        negative_violation = self.distance.closer_than(matrix, self.alpha)
        in_positive_set = positive & (positive_violation > 0)
        in_negative_set = negative & (negative_violation > 0)
        zero = matrix.new_zeros(())

        positive_sum = torch.where(in_positive_set, positive_violation, zero).sum(dim=1)
        positive_part = positive_sum / in_positive_set.sum(dim=1).clamp_min(1)

        # Softmax of T_n * violation over N*: shift each row by its largest violation, so
        # exp never overflows; the row's hardest negative has weight 1, so the sum is >= 1.
        violation = torch.where(in_negative_set, negative_violation, zero)
        exponent = violation - violation.detach().amax(dim=1, keepdim=True)
        weights = torch.where(in_negative_set, torch.exp(self.negative_temperature * exponent), zero)
        if self.weights_as_constants:
            weights = weights.detach()
        total_weight = weights.sum(dim=1)
        # Not clamp_min(1): a lone violator's weight is exactly 1 and its gradient must still pass.
        total_weight = torch.where(total_weight > 0, total_weight, torch.ones_like(total_weight))
        negative_part = (weights * violation).sum(dim=1) / total_weight

        return LossTerms(positive_part + self.negative_weight * negative_part, what="query")

    def extra_repr(self) -> str:
        return (
            f"alpha={self.alpha}, margin={self.margin}, negative_temperature={self.negative_temperature}, "
            f"negative_weight={self.negative_weight}, weights_as_constants={self.weights_as_constants}, "
            f"{super().extra_repr()}"
        )
