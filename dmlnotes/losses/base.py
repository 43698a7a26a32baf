"""What every loss shares: input checks, label masks, reduction and the empty batch.

A loss subclasses :class:`MetricLoss` and implements ``compute_loss``, which returns its
terms as :class:`LossTerms`; the base checks the batch, records the statistics and
reduces the terms the same way for every loss (``reduction="mean"``, ``"mean_nonzero"``
or ``"sum"``). A loss is called as ``loss(embeddings, labels)`` or ``loss(embeddings,
labels, indices_tuple)`` with the tuple a miner returned. After each call
``loss.last_stats`` tells how many terms (pairs, triplets, anchors) the batch had and how
many of them were active (non-zero), so a notebook can plot the share of trivial
triplets or warn about an empty batch.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..checks import check_choice, check_embeddings_and_labels
from ..indices import label_masks  # noqa: F401 (part of this module's interface)


class EmptyBatchWarning(UserWarning):
    """The batch held no valid pair, triplet or anchor, so the loss is zero."""


@dataclass(frozen=True)
class LossStats:
    """Bookkeeping of the last call: ``num_terms`` valid terms, ``num_active`` non-zero."""

    num_terms: int
    num_active: int

    @property
    def empty(self) -> bool:
        return self.num_terms == 0

    @property
    def active_fraction(self) -> float:
        return self.num_active / self.num_terms if self.num_terms else 0.0


def zero_loss(embeddings: Tensor) -> Tensor:
    """A scalar zero that stays attached to the graph (``backward`` works, gradients are 0).

    Exactly zero for any finite batch: ``embeddings.sum() * 0`` would be NaN once the sum
    overflows (a float16 batch of moderate values)."""
    return (embeddings * 0.0).sum()


class _FlushSubnormalGradient(torch.autograd.Function):
    """Identity whose backward pass sets gradient entries below the smallest normal float to 0."""

    @staticmethod
    def forward(ctx, values: Tensor) -> Tensor:
        return values.view_as(values)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return grad.masked_fill(grad.abs() < torch.finfo(grad.dtype).tiny, 0.0)


def flush_subnormal_gradients(values: Tensor) -> Tensor:
    """``values`` unchanged; in the backward pass, subnormal gradient entries become 0.

    A softmax over far-apart points has probabilities like ``exp(-100)``: subnormal floats
    (below ``torch.finfo(dtype).tiny``, about ``1e-38`` in float32) that make the next CPU
    matrix product several times slower. What is dropped is smaller than float32 can
    resolve next to any gradient of ordinary size, so the result is unchanged in practice
    (the tests compare with float64 gradients).
    """
    if not values.requires_grad or not values.dtype.is_floating_point:
        return values
    return _FlushSubnormalGradient.apply(values)


REDUCTIONS = ("mean", "mean_nonzero", "sum")


@dataclass
class LossTerms:
    """What ``compute_loss`` returns: the loss's terms and how they average.

    Attributes:
        terms: one non-negative-where-inactive value per pair, triplet or anchor (1-D), or a
            dense matrix whose invalid entries are 0 (then give ``num_terms``).
        what: what a term is (``"triplet"``), for the empty-batch warning.
        num_terms: how many terms the batch has, if not ``terms.numel()``.
        multiplicity: how often ``terms`` holds each term (2 for a symmetric matrix of pairs).
        mean_over: the denominator of ``"mean"`` if not the number of terms (coupled
            clusters averages over classes); None: ``terms.mean()``.
        penalty: added after the reduction (N-pair's norm penalty).
    """

    terms: Tensor
    what: str = "pair or triplet"
    num_terms: int | None = None
    multiplicity: int = 1
    mean_over: Tensor | int | None = None
    penalty: Tensor | None = None

    @classmethod
    def none(cls, embeddings: Tensor, what: str) -> LossTerms:
        """No term at all: the batch has nothing to learn from."""
        return cls(embeddings.new_zeros(0), what)


class MetricLoss(nn.Module):
    """Base class of the losses: ``loss(embeddings, labels, indices_tuple=None) -> scalar``.

    Args:
        reduction: ``"mean"`` (default): mean over all valid terms, zero terms included;
            ``"mean_nonzero"``: mean over the active (non-zero) terms, which keeps the
            gradient from fading as more terms become trivial (pytorch-metric-learning's
            ``AvgNonZeroReducer``); ``"sum"``.
        warn_if_empty: emit an :class:`EmptyBatchWarning` when a batch has no valid term.

    A loss that compares every sample with everything it needs (NCA, proxies, class
    weights) sets ``takes_indices_tuple = False``: a miner's tuple is then refused
    instead of ignored.
    """

    takes_indices_tuple = True
    #: what the loss compares every sample with, for the error when it is given a miner's tuple
    compares_with = "every other sample of the batch"

    def __init__(self, warn_if_empty: bool = False, reduction: str = "mean"):
        super().__init__()
        check_choice("reduction", reduction, REDUCTIONS)
        self.reduction = reduction
        self.warn_if_empty = warn_if_empty
        self.last_stats: LossStats | None = None

    def forward(self, embeddings: Tensor, labels: Tensor, indices_tuple: tuple[Tensor, ...] | None = None) -> Tensor:
        labels = check_embeddings_and_labels(embeddings, labels)
        if indices_tuple is not None and not self.takes_indices_tuple:
            raise ValueError(
                f"{type(self).__name__} does not take an indices_tuple (a miner's pairs or triplets): "
                f"every sample is compared with {self.compares_with}"
            )
        if labels.numel() == 0:  # a 0-row batch has nothing to learn from, whatever the loss
            return self.empty_loss(embeddings, "sample")
        terms = self.compute_loss(embeddings, labels, indices_tuple)
        if not isinstance(terms, LossTerms):
            raise TypeError(f"{type(self).__name__}.compute_loss must return LossTerms, got {type(terms).__name__}")
        return self.reduce(terms, embeddings)

    def compute_loss(self, embeddings: Tensor, labels: Tensor, indices_tuple: tuple[Tensor, ...] | None) -> LossTerms:
        raise NotImplementedError

    def reduce(self, out: LossTerms, embeddings: Tensor) -> Tensor:
        """Record ``last_stats`` and reduce the terms as ``self.reduction`` says."""
        terms = out.terms
        num_terms = terms.numel() // out.multiplicity if out.num_terms is None else out.num_terms
        if num_terms == 0:
            return self.empty_loss(embeddings, out.what)
        num_active = int((terms.detach() > 0).sum()) // out.multiplicity
        self.last_stats = LossStats(num_terms=num_terms, num_active=num_active)
        if self.reduction == "sum":
            loss = terms.sum() if out.multiplicity == 1 else terms.sum() / out.multiplicity
        elif self.reduction == "mean_nonzero":
            # Sum over all terms / number of non-zero ones = mean of the non-zero terms (0 if none).
            loss = terms.sum() / (out.multiplicity * max(num_active, 1))
        elif out.mean_over is None and out.num_terms is None:
            loss = terms.mean()
        else:
            loss = terms.sum() / (out.mean_over if out.mean_over is not None else out.multiplicity * num_terms)
        return loss if out.penalty is None else loss + out.penalty

    def empty_loss(self, embeddings: Tensor, what: str = "pair or triplet") -> Tensor:
        """Zero loss for a batch with nothing to learn from; warns if asked to."""
        self.last_stats = LossStats(num_terms=0, num_active=0)
        if self.warn_if_empty:
            warnings.warn(
                f"{type(self).__name__}: the batch has no valid {what}; the loss is zero. "
                "Use a class-balanced sampler with at least two samples per class.",
                EmptyBatchWarning,
                stacklevel=3,
            )
        return zero_loss(embeddings)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"
