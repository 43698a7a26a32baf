"""Lifted structured loss (Song, Xiang, Jegelka, Savarese 2016; survey section 1.3, eq. (3)).

For every positive pair (i, j) of the batch the loss looks at *all* negatives of both
ends at once, instead of one sampled negative as the triplet loss does::

    smooth (the paper's objective):
        J_ij = log( sum_{k in N(i)} exp(alpha - D_ik) + sum_{l in N(j)} exp(alpha - D_jl) ) + D_ij
    hard (the survey's eq. (3)):
        J_ij = max( max_{k in N(i)} (alpha - D_ik), max_{l in N(j)} (alpha - D_jl) ) + D_ij

    L = 1 / (2 |P|) * sum_{(i, j) in P} [J_ij]_+^2

The log-sum-exp is a smooth upper bound of the max (``max <= LSE <= max + log(count)``),
so the smooth loss is never below the hard one; Song et al. optimise the smooth form
because the nested hard maxima led to poor local optima.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..checks import check_choice, check_non_negative
from ..distances import Distance, EuclideanDistance, check_distance
from ..indices import check_indices_tuple, pairs_from_indices
from .base import LossTerms, MetricLoss, label_masks

FORMS = ("smooth", "hard")


class LiftedStructureLoss(MetricLoss):
    """Lifted structured loss over every positive pair of the batch (survey eq. (3)).

    Conventions:
        * ``D`` is the plain Euclidean distance ``||f_i - f_j||`` (not squared), as in the
          paper, with a finite gradient at zero distance (default ``distance=EuclideanDistance()``).
        * Embeddings are not normalised by default (Song et al. use the raw embedding);
          ``distance=EuclideanDistance(normalize_embeddings=True)`` puts them on the unit sphere first.
        * ``P`` is the set of *unordered* positive pairs ``{i, j}``, each counted once, and
          ``N(i)`` the samples with a label different from ``i``'s. This is the paper's
          convention: its reference Caffe layer loops over ``j > i`` and divides the sum of
          squared hinges by ``2 * num_pairs``. ``J_ij`` is symmetric, so counting ordered
          pairs instead would give the same value.
        * A positive pair with no negative at all (a batch of a single class) is not a
          term; a batch without any term returns a graph-attached zero.

    ``last_stats`` counts the positive pairs (``num_terms``) and those with ``J_ij > 0``
    (``num_active``).

    Defaults: ``margin=1.0`` (``alpha = 1`` in Song et al. 2016), ``form="smooth"``.

    Relation to pytorch-metric-learning (2.x):
        * ``LiftedStructureLoss(neg_margin=alpha, pos_margin=0)`` computes the same smooth
          ``J_ij`` but loops over *ordered* positive pairs and halves each squared hinge;
          averaged by its default ``MeanReducer`` this equals our value. Its default
          distance is ``LpDistance()`` with ``normalize_embeddings=True``: pass
          ``LpDistance(normalize_embeddings=False)`` to match our default, or use
          ``EuclideanDistance(normalize_embeddings=True)`` here. Its ``pos_margin`` (``D_ij - pos_margin``)
          has no counterpart in the paper. It has no hard form.
        * ``GeneralizedLiftedStructureLoss`` (Hermans et al. 2017, p. 4) is a different
          loss: per *anchor* ``[LSE_p (D_ap - pos_margin) + LSE_n (neg_margin - D_an)]_+``,
          not squared, averaged over anchors; it softens the positive side too.

    Args:
        margin: ``alpha >= 0``, in units of (plain) Euclidean distance.
        form: ``"smooth"`` (log-sum-exp, the paper) or ``"hard"`` (max, the survey's eq. (3)).
        distance: a ``dmlnotes.distances.Distance`` (default ``EuclideanDistance()``, the
            paper's); with a similarity the signs flip (``s - margin`` for negatives, ``-s`` for the pair).
        warn_if_empty: warn when the batch has no positive pair with a negative.
        reduction: ``"mean"`` (default), ``"mean_nonzero"`` or ``"sum"`` over the terms
            (see :class:`~dmlnotes.losses.base.MetricLoss`).

    Shapes:
        embeddings ``(batch, dim)`` float, labels ``(batch,)`` int -> scalar.
        ``indices_tuple`` (optional) restricts the pairs: a pair tuple
        ``(anchors_p, positives, anchors_n, negatives)`` or a triplet tuple
        ``(anchors, positives, negatives)``; pairs are taken unordered, so ``k`` is a
        negative of ``i`` when ``(i, k)`` or ``(k, i)`` is a listed negative pair.
    """

    def __init__(
        self,
        margin: float = 1.0,
        form: str = "smooth",
        distance: Distance | None = None,
        warn_if_empty: bool = False,
        reduction: str = "mean",
    ):
        super().__init__(warn_if_empty=warn_if_empty, reduction=reduction)
        margin = check_non_negative("margin", margin)
        check_choice("form", form, FORMS)
        self.margin = float(margin)
        self.form = form
        self.distance = check_distance(distance, EuclideanDistance())

    def compute_loss(self, embeddings: Tensor, labels: Tensor, indices_tuple: tuple[Tensor, ...] | None) -> Tensor:
        positive, negative = label_masks(labels)
        if indices_tuple is not None:
            positive, negative = _restrict_to_tuple(positive, negative, indices_tuple, labels)
        distances = self.distance(embeddings)

        # One number per sample: how strongly its nearest negatives violate the margin.
        # Rows without a negative are filled with 0 before reducing (no -inf - -inf in the
        # backward pass) and set to -inf afterwards, which drops them from the pair terms.
        has_negative = negative.any(dim=1)
        violations = self.distance.closer_than(distances, self.margin).masked_fill(~negative, float("-inf"))
        violations = torch.where(has_negative.unsqueeze(1), violations, torch.zeros_like(violations))
        per_sample = torch.logsumexp(violations, dim=1) if self.form == "smooth" else violations.max(dim=1).values
        per_sample = torch.where(has_negative, per_sample, torch.full_like(per_sample, float("-inf")))

        # Unordered positive pairs i < j with at least one negative between the two ends.
        pair_mask = torch.triu(positive, diagonal=1) & (has_negative.unsqueeze(1) | has_negative.unsqueeze(0))
        first, second = pair_mask.nonzero(as_tuple=True)
        if first.numel() == 0:
            return LossTerms.none(embeddings, "positive pair with a negative")
        if self.form == "smooth":
            # log(sum_k exp(.) + sum_l exp(.)) = logaddexp of the two per-sample log-sums.
            hardest = torch.logaddexp(per_sample[first], per_sample[second])
        else:
            hardest = torch.maximum(per_sample[first], per_sample[second])
        hinge = (hardest + self.distance.farther_than(distances[first, second], 0.0)).clamp_min(0.0)
        return LossTerms(0.5 * (hinge * hinge), what="positive pair with a negative")

    def extra_repr(self) -> str:
        return f"margin={self.margin}, form={self.form!r}, {super().extra_repr()}"


def _restrict_to_tuple(positive: Tensor, negative: Tensor, indices_tuple, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Keep only the pairs a miner listed, taken unordered."""
    anchors_p, positives, anchors_n, negatives = pairs_from_indices(check_indices_tuple(indices_tuple, labels))
    listed_positive = torch.zeros_like(positive)
    listed_positive[anchors_p, positives] = True
    listed_negative = torch.zeros_like(negative)
    listed_negative[anchors_n, negatives] = True
    return positive & (listed_positive | listed_positive.T), negative & (listed_negative | listed_negative.T)
