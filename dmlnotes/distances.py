"""Pairwise distances and similarities between two sets of embeddings.

Functions return an ``(n, m)`` matrix for ``x`` of shape ``(n, d)`` and ``y`` of shape
``(m, d)``; with ``y=None`` they compare ``x`` with itself and the diagonal is exactly
zero (distances) so that a point's distance to itself never leaks a gradient.

The classes wrap the functions so that a loss can take the distance as a parameter,
in the way pytorch-metric-learning does: one triplet loss serves squared Euclidean,
Euclidean and cosine. ``is_similarity`` tells whether larger means closer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .checks import check_finite_rows


def _check_shapes(x: Tensor, y: Tensor | None) -> None:
    if not isinstance(x, Tensor) or x.dim() != 2:
        raise ValueError(f"embeddings must be a 2-D tensor (n, dim), got {_describe(x)}")
    if y is None:
        return
    if not isinstance(y, Tensor) or y.dim() != 2:
        raise ValueError(f"the second set of embeddings must be a 2-D tensor (m, dim), got {_describe(y)}")
    if y.shape[1] != x.shape[1]:
        raise ValueError(f"embedding dimensions differ: {x.shape[1]} and {y.shape[1]}")


def _check_pair(x: Tensor, y: Tensor | None) -> Tensor:
    """``y`` (or ``x`` when ``y`` is None) after checking shapes and finite rows of both."""
    _check_shapes(x, y)
    check_finite_rows(x)
    return x if y is None else check_finite_rows(y, "the second set of embeddings")


def _describe(value) -> str:
    if isinstance(value, Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return f"{type(value).__name__}"


class _SquaredEuclidean(torch.autograd.Function):
    """Squared distances with the gradient in closed form.

    ``d_ij = |x_i - y_j|^2`` gives ``dL/dx_i = 2 (sum_j G_ij x_i - sum_j G_ij y_j)``: two
    matrix products, where autograd's chain through the expansion takes about ten
    operations (a third of a proxy loss's time). The backward pass uses differentiable
    operations on the inputs, so second derivatives work too.
    """

    @staticmethod
    def forward(ctx, x: Tensor, y: Tensor | None, center: Tensor | None) -> Tensor:
        shifted = x if center is None else x - center
        other = shifted if y is None else (y if center is None else y - center)
        x_sq = (shifted * shifted).sum(dim=1, keepdim=True)
        y_sq = x_sq.T if y is None else (other * other).sum(dim=1).unsqueeze(0)
        # |y|^2 - 2 x.y in one BLAS call, then + |x|^2 and the clamp in place: one n x m buffer, not five.
        squared = torch.addmm(y_sq, shifted, other.T, alpha=-2.0).add_(x_sq).clamp_min_(0.0)
        if y is None:
            squared.fill_diagonal_(0.0)
        ctx.save_for_backward(x, y)
        return squared

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, y = ctx.saved_tensors
        if y is None:  # x plays both roles: d_ij and d_ji both move x_i
            both = grad + grad.T
            return 2.0 * (both.sum(dim=1, keepdim=True) * x - both @ x), None, None
        grad_x = 2.0 * (grad.sum(dim=1, keepdim=True) * x - grad @ y) if ctx.needs_input_grad[0] else None
        grad_y = 2.0 * (grad.sum(dim=0).unsqueeze(1) * y - grad.T @ x) if ctx.needs_input_grad[1] else None
        return grad_x, grad_y, None


def pairwise_squared_euclidean(x: Tensor, y: Tensor | None = None, center: Tensor | None = None) -> Tensor:
    """Squared Euclidean distances ``||x_i - y_j||^2``, clamped at zero against rounding.

    Computed as ``|x|^2 + |y|^2 - 2 x.y`` (one matrix product) after subtracting
    ``center`` (default: the mean of ``x``) from both sets. Distances do not change under
    a common shift, but the expansion does: embeddings far from the origin (norm 1e3,
    small spread) lose most of their float32 digits to cancellation without it. Give
    ``center`` to compare chunks of one set with the same rounding (retrieval metrics).
    The gradient is the exact ``2 (x_i - y_j)`` per pair, also where rounding clamped a
    distance to zero.
    """
    _check_pair(x, y)
    if center is None and x.shape[0] > 0:
        center = x.detach().mean(dim=0, keepdim=True)  # a constant: distances do not depend on it
    return _SquaredEuclidean.apply(x, y, None if center is None else center.detach())


class _SafeSqrt(torch.autograd.Function):
    """sqrt with the gradient 1 / (2 sqrt(x)) replaced by 0 at x = 0 (where it is infinite)."""

    @staticmethod
    def forward(ctx, values: Tensor) -> Tensor:
        roots = torch.sqrt(values)
        ctx.save_for_backward(roots)
        return roots

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (roots,) = ctx.saved_tensors
        return torch.where(roots > 0, grad / (2.0 * roots), torch.zeros_like(grad))


def safe_sqrt(values: Tensor) -> Tensor:
    """Square root (of non-negative values) whose gradient is zero, not infinite, at zero.

    Coincident embeddings (a collapsed model, a point and itself) then pass no gradient
    through their distance instead of NaN.
    """
    return _SafeSqrt.apply(values)


def pairwise_euclidean(x: Tensor, y: Tensor | None = None) -> Tensor:
    """Euclidean distances ``||x_i - y_j||`` with a finite gradient at zero distance."""
    return safe_sqrt(pairwise_squared_euclidean(x, y))


def pairwise_cosine_similarity(x: Tensor, y: Tensor | None = None, eps: float = 1e-12) -> Tensor:
    """Cosine similarities ``x_i . y_j / (||x_i|| ||y_j||)``, in [-1, 1]."""
    other = _check_pair(x, y)
    x_unit = F.normalize(x, dim=1, eps=eps)
    y_unit = x_unit if y is None else F.normalize(other, dim=1, eps=eps)
    return x_unit @ y_unit.T


class Distance(nn.Module):
    """Base class: ``distance(x, y=None)`` returns the pairwise matrix.

    Args:
        normalize_embeddings: L2-normalise both sets first (distances on the unit sphere).
    """

    is_similarity = False

    def __init__(self, normalize_embeddings: bool = False):
        super().__init__()
        self.normalize_embeddings = normalize_embeddings

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        if self.normalize_embeddings:  # pairwise() checks the normalised sets: a NaN or inf row stays NaN
            _check_shapes(x, y)
            x = F.normalize(x, dim=1)
            y = None if y is None else F.normalize(y, dim=1)
        return self.pairwise(x, y)

    def pairwise(self, x: Tensor, y: Tensor | None) -> Tensor:
        raise NotImplementedError

    def farther_than(self, values: Tensor, bound) -> Tensor:
        """How much farther apart than ``bound`` the pairs are (negative: closer).

        ``values - bound`` for a distance, ``bound - values`` for a similarity: a positive
        pair of the contrastive loss costs ``[farther_than(D, pos_margin)]_+``."""
        return bound - values if self.is_similarity else values - bound

    def closer_than(self, values: Tensor, bound) -> Tensor:
        """How much closer than ``bound`` the pairs are (negative: farther apart).

        ``bound - values`` for a distance, ``values - bound`` for a similarity: a negative
        pair of the contrastive loss costs ``[closer_than(D, margin)]_+``."""
        return values - bound if self.is_similarity else bound - values

    def as_logits(self, values: Tensor, scale: float) -> Tensor:
        """``scale * s`` for a similarity, ``-scale * d`` for a distance: larger means closer."""
        return scale * values if self.is_similarity else -scale * values

    def margin_violation(self, closer: Tensor, farther: Tensor, margin: float) -> Tensor:
        """How much ``closer`` fails to beat ``farther`` by ``margin`` (positive = violated).

        For distances this is ``closer - farther + margin``; for similarities the signs flip.
        """
        if self.is_similarity:
            return farther - closer + margin
        return closer - farther + margin

    def extra_repr(self) -> str:
        return f"normalize_embeddings={self.normalize_embeddings}"


class SquaredEuclideanDistance(Distance):
    """``||x - y||^2`` (the survey's convention in eqs. (1), (2), (13))."""

    def pairwise(self, x: Tensor, y: Tensor | None) -> Tensor:
        return pairwise_squared_euclidean(x, y)


class EuclideanDistance(Distance):
    """``||x - y||`` with a finite gradient at zero distance."""

    def pairwise(self, x: Tensor, y: Tensor | None) -> Tensor:
        return pairwise_euclidean(x, y)


class CosineSimilarity(Distance):
    """``cos(x, y)``; a similarity, so larger means closer. Always normalises."""

    is_similarity = True

    def __init__(self):
        super().__init__(normalize_embeddings=True)

    def pairwise(self, x: Tensor, y: Tensor | None) -> Tensor:
        return pairwise_cosine_similarity(x, y)


def check_distance(distance, default: Distance) -> Distance:
    """``distance``, or ``default`` when it is None; raises unless it is a :class:`Distance`."""
    if distance is None:
        return default
    if not isinstance(distance, Distance):
        raise ValueError(
            "distance must be a dmlnotes.distances.Distance such as SquaredEuclideanDistance(), "
            f"got {type(distance).__name__}"
        )
    return distance


def default_distance(distance: Distance | None) -> Distance:
    """``distance``, or the triplet family's default: squared Euclidean on L2-normalised embeddings (FaceNet)."""
    return check_distance(distance, SquaredEuclideanDistance(normalize_embeddings=True))
