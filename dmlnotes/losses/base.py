"""What every loss shares: input checks, label masks, reduction and the empty batch.

A loss subclasses :class:`MetricLoss` and implements ``compute_loss``; it is called as
``loss(embeddings, labels)`` or ``loss(embeddings, labels, indices_tuple)`` with the
tuple a miner returned. After each call ``loss.last_stats`` tells how many terms
(pairs, triplets, anchors) the batch had and how many of them were active (non-zero),
so a notebook can plot the share of trivial triplets or warn about an empty batch.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..checks import check_embeddings_and_labels  # noqa: F401 (part of this module's interface)
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
    """A scalar zero that stays attached to the graph (``backward`` works, gradients are 0)."""
    return embeddings.sum() * 0.0


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


class MetricLoss(nn.Module):
    """Base class of the losses: ``loss(embeddings, labels, indices_tuple=None) -> scalar``.

    Args:
        warn_if_empty: emit an :class:`EmptyBatchWarning` when a batch has no valid term.
    """

    def __init__(self, warn_if_empty: bool = False):
        super().__init__()
        self.warn_if_empty = warn_if_empty
        self.last_stats: LossStats | None = None

    def forward(self, embeddings: Tensor, labels: Tensor, indices_tuple: tuple[Tensor, ...] | None = None) -> Tensor:
        labels = check_embeddings_and_labels(embeddings, labels)
        self.last_stats = None
        loss = self.compute_loss(embeddings, labels, indices_tuple)
        if self.last_stats is None:
            raise RuntimeError(f"{type(self).__name__}.compute_loss must finish with mean_of_terms, reduce, record or empty_loss")
        return loss

    def compute_loss(self, embeddings: Tensor, labels: Tensor, indices_tuple: tuple[Tensor, ...] | None) -> Tensor:
        raise NotImplementedError

    # Helpers for subclasses -------------------------------------------------------
    def record(self, terms: Tensor) -> None:
        """Store how many terms the batch had and how many were non-zero."""
        terms = terms.detach()
        self.last_stats = LossStats(num_terms=int(terms.numel()), num_active=int((terms > 0).sum()))

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

    def mean_of_terms(self, terms: Tensor, embeddings: Tensor, what: str = "pair or triplet") -> Tensor:
        """Mean over the valid terms, or a graph-attached zero when there are none."""
        if terms.numel() == 0:
            return self.empty_loss(embeddings, what)
        self.record(terms)
        return terms.mean()

    def reduce_masked(
        self, terms: Tensor, valid: Tensor, embeddings: Tensor, reduction: str = "mean", what: str = "pair or triplet"
    ) -> Tensor:
        """Like :meth:`reduce` for a dense matrix of ``terms`` of which only ``valid`` ones count.

        Cheaper than gathering the valid terms first when they are a large share of a
        pairwise matrix (no index lists, no scatter in the backward pass).
        """
        num_terms = int(valid.sum())
        if num_terms == 0:
            return self.empty_loss(embeddings, what)
        kept = terms * valid  # terms are finite, so masking by a product is exact
        num_active = int((kept.detach() > 0).sum())
        self.last_stats = LossStats(num_terms=num_terms, num_active=num_active)
        return kept.sum() / (num_terms if reduction == "mean" else max(num_active, 1))

    def reduce(self, terms: Tensor, embeddings: Tensor, reduction: str = "mean", what: str = "pair or triplet") -> Tensor:
        """``"mean"`` over all valid terms, or ``"mean_nonzero"`` over the active (non-zero) ones.

        Averaging only the active terms keeps the gradient from fading as more and more
        terms become trivial (pytorch-metric-learning's ``AvgNonZeroReducer``).
        """
        if reduction == "mean" or terms.numel() == 0:
            return self.mean_of_terms(terms, embeddings, what)
        self.record(terms)
        # Sum over all terms / number of non-zero ones = mean of the non-zero terms (0 if none).
        return terms.sum() / (terms.detach() > 0).sum().clamp_min(1)
