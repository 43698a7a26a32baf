"""Angular loss (Wang, Zhou, Wen, Liu, Lin 2017, "Deep Metric Learning with Angular Loss").

A triplet constrains a distance difference; the angular loss constrains the angle at the
negative of the triangle (anchor, positive, negative), which is scale-invariant and
involves all three sides. Seen from the negative ``x_n``, the circle through ``x_a`` and
``x_p`` centred at ``x_c = (x_a + x_p) / 2`` should look no wider than ``2 alpha``:
``||x_a - x_p|| <= 2 tan(alpha) ||x_n - x_c||``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ..checks import check_choice, check_finite
from ..indices import all_triplet_indices, check_indices_tuple, label_masks, pairs_from_indices, triplets_from_indices
from .base import LossTerms, MetricLoss

ANGULAR_FORMS = ("smooth", "triplet")


class AngularLoss(MetricLoss):
    r"""Angular loss, in its smooth N-pair form (default) or its triplet (hinge) form.

    With ``t = tan^2(alpha)`` and ``x_c = (x_a + x_p) / 2`` (Wang et al. 2017):

    * ``form="triplet"`` (the paper's loss for a triplet): one term per triplet,
      ``[||x_a - x_p||^2 - 4 t ||x_n - x_c||^2]_+``.
    * ``form="smooth"`` (the paper's smooth N-pair version): one term per positive pair ``(a, p)``,
      ``log(1 + sum_n exp(f_{a,p,n}))`` over the negatives ``n`` of ``a``, with
      ``f_{a,p,n} = 4 t (x_a + x_p)^T x_n - 2 (1 + t) x_a^T x_p``.
      For unit vectors ``f`` is the hinge's argument minus the constant ``2 - 6 t``, so
      this is a soft maximum of the triplet form's terms over the negatives.

    Conventions:
        * ``alpha`` is in **degrees** (like pytorch-metric-learning's ``AngularLoss(alpha=40)``);
          default 40 as there (the technical notes give about 40-45 degrees). ``0 < alpha < 90``.
        * Embeddings are L2-normalised (the paper's setting) unless ``normalize_embeddings=False``,
          in which case the formulas are applied to the raw vectors as written.
        * Pairs: every ordered positive pair ``(a, p)``, ``a != p``, whose anchor has a
          negative (the paper forms its batches of N pairs of N classes; this takes every
          pair of a P x K batch, as pytorch-metric-learning does); the triplet form takes
          every valid triplet. A miner's tuple gives the positive pairs (smooth form, the
          negatives being all other-class samples, as in pytorch-metric-learning) or the
          triplets (triplet form).
        * The paper trains ``l_npair + 2 l_ang``; this is ``l_ang`` alone (add an
          :class:`~dmlnotes.losses.NPairLoss` for the combination).
        * pytorch-metric-learning's ``AngularLoss`` normalises the anchors and positives but
          not the negatives ``x_n``: equal to ours for unit-norm input only.

    Args:
        alpha: the angle bound, in degrees, ``0 < alpha < 90``.
        form: ``"smooth"`` (default) or ``"triplet"``.
        normalize_embeddings: L2-normalise the embeddings first (default True).
        warn_if_empty: warn when the batch has no positive pair with a negative.
        reduction: ``"mean"`` (default), ``"mean_nonzero"`` or ``"sum"`` over the terms.

    Shapes: embeddings ``(batch, dim)``, labels ``(batch,)``, optional ``indices_tuple``
    of three (or four) long tensors; returns a scalar.
    """

    def __init__(
        self,
        alpha: float = 40.0,
        form: str = "smooth",
        normalize_embeddings: bool = True,
        warn_if_empty: bool = False,
        reduction: str = "mean",
    ):
        super().__init__(warn_if_empty=warn_if_empty, reduction=reduction)
        alpha = check_finite("alpha", alpha)
        if not 0.0 < alpha < 90.0:
            raise ValueError(f"alpha must be an angle in degrees between 0 and 90 (exclusive), got {alpha!r}")
        check_choice("form", form, ANGULAR_FORMS)
        self.alpha = alpha
        self.form = form
        self.normalize_embeddings = bool(normalize_embeddings)

    @property
    def tan_squared(self) -> float:
        return math.tan(math.radians(self.alpha)) ** 2

    def compute_loss(self, embeddings: Tensor, labels: Tensor, indices_tuple) -> LossTerms:
        if self.normalize_embeddings:
            embeddings = F.normalize(embeddings, dim=1)
        if self.form == "triplet":
            return self._triplet_terms(embeddings, labels, indices_tuple)
        return self._smooth_terms(embeddings, labels, indices_tuple)

    def _smooth_terms(self, embeddings: Tensor, labels: Tensor, indices_tuple) -> LossTerms:
        positive_pairs, negative = label_masks(labels)
        if indices_tuple is None:
            anchors, positives = torch.where(positive_pairs & negative.any(dim=1, keepdim=True))
        else:
            anchors, positives = pairs_from_indices(check_indices_tuple(indices_tuple, labels))[:2]
            has_negative = negative[anchors].any(dim=1)
            anchors, positives = anchors[has_negative], positives[has_negative]
        if anchors.numel() == 0:
            return LossTerms.none(embeddings, "positive pair with a negative")
        t = self.tan_squared
        pair_sum = embeddings[anchors] + embeddings[positives]
        anchor_positive = (embeddings[anchors] * embeddings[positives]).sum(dim=1, keepdim=True)
        logits = 4.0 * t * (pair_sum @ embeddings.T) - 2.0 * (1.0 + t) * anchor_positive
        logits = logits.masked_fill(~negative[anchors], float("-inf"))
        # softplus keeps the small terms of easy pairs that logsumexp with a zero column would round away.
        return LossTerms(F.softplus(torch.logsumexp(logits, dim=1)), what="positive pair with a negative")

    def _triplet_terms(self, embeddings: Tensor, labels: Tensor, indices_tuple) -> LossTerms:
        if indices_tuple is None:
            anchors, positives, negatives = all_triplet_indices(labels)
        else:
            anchors, positives, negatives = triplets_from_indices(check_indices_tuple(indices_tuple, labels))
        if anchors.numel() == 0:
            return LossTerms.none(embeddings, "triplet")
        # Through the Gram matrix: no (triplets x dim) tensor.
        gram = embeddings @ embeddings.T
        norms = gram.diagonal()
        a_p, a_n, p_n = gram[anchors, positives], gram[anchors, negatives], gram[positives, negatives]
        anchor_positive = norms[anchors] + norms[positives] - 2.0 * a_p
        negative_centre = norms[negatives] - a_n - p_n + (norms[anchors] + norms[positives] + 2.0 * a_p) / 4.0
        terms = F.relu(anchor_positive - 4.0 * self.tan_squared * negative_centre)
        return LossTerms(terms, what="triplet")

    def extra_repr(self) -> str:
        return (
            f"alpha={self.alpha}, form={self.form!r}, normalize_embeddings={self.normalize_embeddings}, "
            f"{super().extra_repr()}"
        )
