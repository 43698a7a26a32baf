"""Coupled clusters loss (Liu, Tian, Wang, Pang, Huang 2016; survey section 1.5, eqs. (5)-(6)).

A triplet loss depends on which sample is the anchor: with a badly placed anchor a
negative can satisfy the margin although it sits right next to another member of the
class (the survey's Fig. 1). The coupled clusters loss replaces the anchor by the class
centre, which does not depend on such a choice::

    c_p = 1/N_p sum_i f(x_i^p)                                                      (5)
    L   = sum_i 1/2 [ ||f(x_i^p) - c_p||^2 + alpha - ||f(x_*^n) - c_p||^2 ]_+        (6)

with ``x_*^n`` the negative nearest to the centre.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..checks import check_non_negative
from ..distances import Distance, SquaredEuclideanDistance, check_distance
from .base import LossTerms, MetricLoss


class CoupledClustersLoss(MetricLoss):
    """Coupled clusters loss, one positive set per class of the batch (survey eqs. (5)-(6)).

    Every class ``c`` with at least two samples in the batch is a positive set; its
    negatives are all samples of the other classes (single-sample classes included).
    For each positive set: centre ``c_p`` = mean of its embeddings (eq. (5)), nearest
    negative ``n* = argmin_n ||f_n - c_p||^2``, and the per-sample hinge of eq. (6).

    Conventions:
        * Squared Euclidean distances, as in eq. (6) (default ``distance=SquaredEuclideanDistance()``);
          embeddings not normalised by default (``SquaredEuclideanDistance(normalize_embeddings=True)``
          puts them on the unit sphere before the centres are taken; the centres themselves are
          not renormalised).
        * Reduction: eq. (6) *sums* over the members of a positive set; the loss is the
          mean of these per-class sums over the positive sets of the batch (so it does
          not grow with the number of classes, but does with the samples per class).
        * The centre is differentiable by default, so the loss is exactly eqs. (5)-(6)
          composed: besides the pull of each violating member towards the centre, every
          member of the class gets a share ``k / N_p`` of the push away from the nearest
          negative (``k`` violating members), so the whole cluster moves away from it.
          ``detach_center=True`` treats the centre as a constant of the step: violating
          members are pulled towards it and the nearest negative pushed away, nothing
          else. The survey does not say which of the two the original uses.
        * Ties for the nearest negative are broken by ``argmin`` (first index); the
          choice has no gradient of its own, like any hard mining.

    ``last_stats`` counts the members of the positive sets (``num_terms``) and those
    whose hinge is positive (``num_active``, the violations). A batch without a class
    of two samples, or with a single class, returns a graph-attached zero.

    There is no coupled clusters loss in pytorch-metric-learning to compare with.

    Args:
        margin: ``alpha >= 0``, in units of squared distance. Default 1.0 (the survey gives
            no value).
        detach_center: stop the gradient through the centres.
        distance: a ``dmlnotes.distances.Distance`` that is not a similarity (default
            ``SquaredEuclideanDistance()``); the margin is in its units.
        warn_if_empty: warn when the batch has no positive set with a negative.
        reduction: ``"mean"`` (default): the members' hinges summed, divided by the number
            of positive sets (eq. (6) is a sum within each set, averaged over the sets);
            ``"mean_nonzero"``: divided by the number of members with a non-zero hinge;
            ``"sum"``.

    Shapes:
        embeddings ``(batch, dim)`` float, labels ``(batch,)`` int -> scalar. Works on any
        batch, including a handful of hand-placed 2-D points. ``indices_tuple`` is not
        supported (the loss mines its own negative per class).
    """

    def __init__(
        self,
        margin: float = 1.0,
        detach_center: bool = False,
        distance: Distance | None = None,
        warn_if_empty: bool = False,
        reduction: str = "mean",
    ):
        super().__init__(warn_if_empty=warn_if_empty, reduction=reduction)
        self.margin = check_non_negative("margin", margin)
        self.detach_center = bool(detach_center)
        self.distance = check_distance(distance, SquaredEuclideanDistance())
        if self.distance.is_similarity:
            raise ValueError(
                "CoupledClustersLoss needs a distance (nearest negative = smallest value), not a similarity"
            )

    takes_indices_tuple = False
    compares_with = "its class centre and the nearest negative of each class (the loss mines them itself)"

    def compute_loss(self, embeddings: Tensor, labels: Tensor, indices_tuple: tuple[Tensor, ...] | None) -> Tensor:
        if self.distance.normalize_embeddings:
            embeddings = F.normalize(embeddings, dim=1)
        n = labels.shape[0]
        _, class_of, class_sizes = torch.unique(labels, return_inverse=True, return_counts=True)
        num_classes = class_sizes.shape[0]
        membership = F.one_hot(class_of, num_classes).T.bool()  # (classes, batch)

        weights = membership.to(embeddings.dtype) / class_sizes.unsqueeze(1).to(embeddings.dtype)
        centres = weights @ embeddings  # eq. (5): the mean of each class
        if self.detach_center:
            centres = centres.detach()
        to_centres = self.distance.pairwise(centres, embeddings)  # (classes, batch); centres as they are

        is_positive_set = (class_sizes >= 2) & (class_sizes < n)  # at least two members and one negative
        if not bool(is_positive_set.any()):
            return LossTerms.none(embeddings, "class with two samples and a negative")
        nearest_negative = to_centres.masked_fill(membership, float("inf")).min(dim=1).values
        # Non-positive-set classes may have an infinite nearest negative: use a finite stand-in,
        # their members are dropped below.
        nearest_negative = torch.where(is_positive_set, nearest_negative, torch.zeros_like(nearest_negative))

        members = is_positive_set[class_of].nonzero(as_tuple=True)[0]
        member_class = class_of[members]
        to_own_centre = to_centres[member_class, members]
        hinge = 0.5 * (to_own_centre + self.margin - nearest_negative[member_class]).clamp_min(0.0)  # eq. (6)
        # "mean" averages over the classes (the positive sets), as eq. (6) sums within each.
        return LossTerms(hinge, what="class member", mean_over=is_positive_set.sum())

    def extra_repr(self) -> str:
        return f"margin={self.margin}, detach_center={self.detach_center}, {super().extra_repr()}"
