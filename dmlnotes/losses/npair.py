"""Multi-class N-pair loss (Sohn 2016; survey section 1.4, eq. (4)).

A triplet compares a positive with one negative at a time; the N-pair loss compares it
with many at once through a softmax over dot-product similarities ``S_ik = f_i . f_k``::

    l = -1/|P| sum_{(i, j) in P} log( exp(S_ij) / (exp(S_ij) + sum_{k: y_k != y_i} exp(S_ik)) )
        + regulariser on the embedding norms

Each term equals ``softplus(LSE_k S_ik - S_ij)``, which is how it is computed here:
stable for large similarities and vectorised over all pairs of the batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..checks import check_choice, check_non_negative
from ..data.samplers import ClassBalancedBatchSampler
from ..distances import safe_sqrt
from .base import LossTerms, MetricLoss, check_embeddings_and_labels, label_masks

PAIRINGS = ("all", "npair")
L2_REG_FORMS = ("squared", "norm")


class NPairLoss(MetricLoss):
    """Softmax cross-entropy over dot-product similarities plus an embedding-norm penalty.

    Two ways of forming the terms, chosen by ``pairs``:

    * ``"all"`` (default; the survey's eq. (4) as written): every *ordered* positive pair
      ``(i, j)``, ``i != j`` with ``y_i == y_j``, is a term; the negatives of anchor ``i``
      are all samples ``k`` with ``y_k != y_i``. Works with any batch that has positive
      pairs (e.g. P x K batches).
    * ``"npair"`` (Sohn's multi-class N-pair loss, and his reference code): per class, the
      first sample of the batch is the anchor and the second the positive; further samples
      and single-sample classes are not used. Anchor ``a_c`` is one term, with logits
      ``S(a_c, p_c')`` over the positives of all classes, so its negatives are the
      *positives of the other classes*. On the canonical N-pair batch (exactly two samples
      per class, see :func:`npair_batch_sampler`) this is the textbook loss: N terms with
      N - 1 negatives each.

    On the same canonical batch the two differ: ``"all"`` also uses the reversed pairs
    ``(p_c, a_c)`` and puts all ``2 (N - 1)`` samples of other classes in each denominator.
    ``"npair"`` is eq. (4) restricted to anchor -> positive pairs and to positives as
    negatives.

    The norm penalty (``lambda = l2_reg``), computed on the samples the terms use (the
    whole batch for ``"all"``, the anchors and positives for ``"npair"``):

    * ``l2_reg_form="squared"`` (default; Sohn's reference code, e.g. TensorFlow's
      ``npairs_loss``): ``0.25 * lambda * (mean ||f_a||^2 + mean ||f_p||^2)``, which for
      equally many anchors and positives is ``0.5 * lambda * mean_i ||f_i||^2``; that
      mean form is what is computed. ``lambda = 0.002`` is the reference default.
    * ``l2_reg_form="norm"``: the survey's eq. (4) as printed, ``lambda / m * sum_i ||f_i||_2``
      with ``m`` the batch size: the plain (not squared) norm, i.e. ``lambda * mean_i ||f_i||``.

    The survey adds that the features are "L2-regularised" so that only their direction
    matters; Sohn does not normalise, he penalises the norm so that the dot products stay
    bounded. ``normalize_embeddings=True`` normalises instead (then the penalty is a
    constant with zero gradient: set ``l2_reg=0``).

    Conventions: similarity is the plain dot product of unnormalised embeddings (Sohn).
    A term needs a positive and at least one negative; a batch without any (all labels
    distinct, or one class only) returns a graph-attached zero, penalty included.
    ``last_stats.num_terms`` is the number of (anchor, positive) terms; each term is a
    cross-entropy, hence positive, so ``num_active`` equals it up to underflow.

    Relation to pytorch-metric-learning (2.x): ``NPairsLoss`` picks, per label, the first
    positive pair of the batch (the first two samples of the class) and takes the
    cross-entropy over ``anchors @ positives.T``: the same as ``pairs="npair"`` here with
    ``l2_reg=0`` (it has no norm penalty built in). Its default ``DotProductSimilarity``
    normalises the embeddings; pass ``DotProductSimilarity(normalize_embeddings=False)``
    to match our default.

    Args:
        l2_reg: ``lambda >= 0``, weight of the norm penalty.
        pairs: ``"all"`` or ``"npair"``, see above.
        l2_reg_form: ``"squared"`` (reference code) or ``"norm"`` (survey's eq. (4)).
        normalize_embeddings: L2-normalise before the dot products (cosine similarities).
        warn_if_empty: warn when the batch has no positive pair with a negative.
        reduction: ``"mean"`` (default), ``"mean_nonzero"`` or ``"sum"`` over the terms
            (see :class:`~dmlnotes.losses.base.MetricLoss`).

    Shapes:
        embeddings ``(batch, dim)`` float, labels ``(batch,)`` int -> scalar.
        ``indices_tuple`` is not supported: the loss uses every pair (``"all"``) or a
        fixed anchor/positive per class (``"npair"``).
    """

    def __init__(
        self,
        l2_reg: float = 0.002,
        pairs: str = "all",
        l2_reg_form: str = "squared",
        normalize_embeddings: bool = False,
        warn_if_empty: bool = False,
        reduction: str = "mean",
    ):
        super().__init__(warn_if_empty=warn_if_empty, reduction=reduction)
        l2_reg = check_non_negative("l2_reg", l2_reg)
        check_choice("pairs", pairs, PAIRINGS)
        check_choice("l2_reg_form", l2_reg_form, L2_REG_FORMS)
        self.l2_reg = float(l2_reg)
        self.pairs = pairs
        self.l2_reg_form = l2_reg_form
        self.normalize_embeddings = bool(normalize_embeddings)

    takes_indices_tuple = False
    compares_with = "every pair of the batch"

    def compute_loss(self, embeddings: Tensor, labels: Tensor, indices_tuple: tuple[Tensor, ...] | None) -> Tensor:
        if self.normalize_embeddings:
            embeddings = F.normalize(embeddings, dim=1)
        if self.pairs == "npair":
            return self._npair_loss(embeddings, labels)
        pair_mask, negative = label_masks(labels)
        has_negative = negative.any(dim=1)
        anchors, partners = (pair_mask & has_negative.unsqueeze(1)).nonzero(as_tuple=True)
        if anchors.numel() == 0:
            return LossTerms.none(embeddings, "positive pair with a negative")

        similarities = embeddings @ embeddings.T
        # Rows without a negative are zero-filled so their log-sum-exp stays finite; they
        # hold no term, so their value never reaches the loss.
        negative_logits = similarities.masked_fill(~negative, float("-inf"))
        negative_logits = torch.where(has_negative.unsqueeze(1), negative_logits, torch.zeros_like(negative_logits))
        negative_lse = torch.logsumexp(negative_logits, dim=1)
        terms = F.softplus(negative_lse[anchors] - similarities[anchors, partners])
        return LossTerms(terms, what="positive pair with a negative", penalty=self.norm_penalty(embeddings))

    def _npair_loss(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """Sohn's form: cross-entropy over the rows of ``anchors @ positives.T`` (one class per row)."""
        anchors, positives = first_two_per_class(labels)
        if anchors.numel() < 2:
            return LossTerms.none(embeddings, "positive pair with a negative")
        logits = embeddings[anchors] @ embeddings[positives].T
        # -log softmax of the diagonal = log(1 + sum_k exp(S_ik - S_ii)), k over the other classes;
        # softplus keeps the tiny losses of well-separated pairs (logsumexp - S_ii would round them to 0).
        eye = torch.eye(len(anchors), dtype=torch.bool, device=logits.device)
        terms = F.softplus(torch.logsumexp(logits.masked_fill(eye, float("-inf")), dim=1) - logits.diagonal())
        return LossTerms(
            terms,
            what="positive pair with a negative",
            penalty=self.norm_penalty(embeddings[torch.cat([anchors, positives])]),
        )

    def norm_penalty(self, embeddings: Tensor) -> Tensor:
        """``0.5 * lambda * mean ||f||^2`` (reference code) or ``lambda * mean ||f||`` (survey)."""
        squared_norms = (embeddings * embeddings).sum(dim=1)
        if self.l2_reg_form == "squared":
            return 0.5 * self.l2_reg * squared_norms.mean()
        return self.l2_reg * safe_sqrt(squared_norms).mean()

    def extra_repr(self) -> str:
        return (
            f"l2_reg={self.l2_reg}, pairs={self.pairs!r}, l2_reg_form={self.l2_reg_form!r}, "
            f"normalize_embeddings={self.normalize_embeddings}"
        )


def first_two_per_class(labels: Tensor) -> tuple[Tensor, Tensor]:
    """Indices ``(anchors, positives)``: the first and second sample of each class, in batch order.

    Classes with a single sample are left out; samples after the second are ignored.
    Returned in the order of the anchors' positions in the batch.
    """
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    earlier = torch.ones_like(same).tril(diagonal=-1)
    rank_in_class = (same & earlier).sum(dim=1)  # 0 for the first sample of its class, 1 for the second...
    first_second = same & (rank_in_class == 0).unsqueeze(1) & (rank_in_class == 1).unsqueeze(0)
    anchors, positives = first_second.nonzero(as_tuple=True)
    return anchors, positives


def split_anchor_positive(embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Split an N-pair batch into ``(anchors, positives, class_labels)``, each with N rows.

    Row ``c`` of ``anchors`` and of ``positives`` are the first and second sample of the
    same class (in batch order); classes with a single sample are dropped. Useful to
    look at the ``N x N`` similarity matrix ``anchors @ positives.T`` the loss works on.
    """
    labels = check_embeddings_and_labels(embeddings, labels)
    anchors, positives = first_two_per_class(labels)
    return embeddings[anchors], embeddings[positives], labels[anchors]


def npair_batch_sampler(
    labels, num_classes_per_batch: int, num_batches: int | None = None, seed: int = 0
) -> ClassBalancedBatchSampler:
    """Batches of N-pair tuples: ``num_classes_per_batch`` classes, one anchor and one positive each.

    A :class:`~dmlnotes.data.samplers.ClassBalancedBatchSampler` with two samples per
    class, listed class by class (anchor then positive), which is the layout
    ``NPairLoss(pairs="npair")`` and :func:`split_anchor_positive` read.
    """
    return ClassBalancedBatchSampler(
        labels, classes_per_batch=num_classes_per_batch, samples_per_class=2, num_batches=num_batches, seed=seed
    )
