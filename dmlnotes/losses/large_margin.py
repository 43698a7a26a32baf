"""Multiplicative angular margins: L-softmax (Liu et al. 2016) and SphereFace / A-softmax (Liu et al. 2017).

Both keep the softmax cross-entropy over bias-free logits ``||W_j|| ||x|| cos(theta_j)`` and
make the true class harder to win by replacing its ``cos(theta_y)`` with :func:`psi`, a
monotone extension of ``cos(m theta)`` to ``[0, pi]``: the sample must be ``m`` times closer in
angle to its class than to the others. L-softmax keeps the weight norms; SphereFace
normalises the weights, so the decision depends on angles only.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ..checks import check_integer, check_non_negative
from .base import LossTerms
from .class_weights import ClassWeightLoss


def chebyshev_cos_multiple(cosine: Tensor, m: int) -> Tensor:
    """``cos(m theta)`` from ``cos(theta)`` by the Chebyshev recurrence ``T_{n+1} = 2 c T_n - T_{n-1}``.

    A polynomial in ``cos(theta)``: its gradient stays finite at ``cos = +-1``, where that of ``acos`` is infinite."""
    previous, current = torch.ones_like(cosine), cosine
    if m == 0:
        return previous
    for _ in range(m - 1):
        previous, current = current, 2 * cosine * current - previous
    return current


def psi(cosine: Tensor, m: int) -> Tensor:
    r"""``psi(theta) = (-1)^k cos(m theta) - 2k`` for ``theta`` in ``[k pi/m, (k+1) pi/m]``, from ``cos(theta)``.

    The monotone decreasing, continuous extension of ``cos(m theta)`` over ``[0, pi]``
    (L-softmax eq. (6), SphereFace eq. (7)); it runs from 1 at ``theta = 0`` down to ``1 - 2m``
    at ``theta = pi``, and ``psi = cos`` for ``m = 1``. ``cos(m theta)`` is the Chebyshev polynomial
    ``T_m(cos theta)``; the piece ``k = floor(m theta / pi)`` comes from ``acos`` of the clamped
    cosine without gradient (``psi`` is continuous, so a ``k`` off by one at a boundary changes nothing).
    """
    with torch.no_grad():
        theta = torch.acos(cosine.clamp(-1.0, 1.0))
        k = torch.floor(theta * (m / math.pi)).clamp(0, m - 1)
        sign = 1.0 - 2.0 * torch.remainder(k, 2.0)
    return sign * chebyshev_cos_multiple(cosine, m) - 2.0 * k


def annealed_lambda(step: int, base: float = 1000.0, gamma: float = 0.12, power: float = 1.0, minimum: float = 5.0):
    """``max(base * (1 + gamma * step)^(-power), minimum)``: the authors' Caffe schedule of ``lambda``.

    Defaults are SphereFace's training prototxt (1000 decaying to 5 by step 1659). Set it with
    ``loss_fn.lambda_ = annealed_lambda(step)`` before each step."""
    return max(base * (1.0 + gamma * step) ** (-power), minimum)


class LargeMarginSoftmaxLoss(ClassWeightLoss):
    r"""L-softmax (Liu, Wen, Yu, Yang, ICML 2016): softmax whose true-class logit has angle margin ``m``.

    .. math::
        \ell(x) = -\log \frac{e^{f_y}}{e^{f_y} + \sum_{j \ne y} e^{\|W_j\| \|x\| \cos\theta_j}},\qquad
        f_y = \|W_y\| \|x\| \frac{\lambda \cos\theta_y + \psi(\theta_y)}{1 + \lambda}

    with :func:`psi` the monotone extension of ``cos(m theta)``. Weights and embeddings are
    not normalised and there is no bias (the non-target logits are the plain dot products
    ``W_j . x``). ``lambda`` blends in the ordinary softmax logit: the paper starts training
    with a large ``lambda`` and lowers it (see :func:`annealed_lambda`); ``lambda = 0`` is the
    loss of the paper's eq. (5) and our default, so set ``loss_fn.lambda_`` from a schedule.

    Conventions: ``m`` is an integer multiplier of the angle (no degrees, no radians), default
    4 as in pytorch-metric-learning (the paper uses 2, 3 and 4). pytorch-metric-learning's
    ``LargeMarginSoftmaxLoss(margin=m, scale=1)`` is the same loss for ``lambda = 0`` (it has no
    ``lambda``; its weight is stored transposed).

    Computed in at least float32 (float16 and bfloat16 batches are upcast, the result cast
    back) with ``F.cross_entropy``; ``psi`` has finite gradients at ``theta = 0`` and ``pi``.

    Args:
        num_classes: number of training classes (>= 2).
        embedding_dim: dimension of the embeddings.
        margin: integer ``m >= 1`` (1 gives the plain bias-free softmax).
        lambda_: ``lambda >= 0``; settable later (``loss_fn.lambda_ = 10.0``).
        warn_if_empty, reduction: see :class:`~dmlnotes.losses.base.MetricLoss`.

    Shapes:
        embeddings ``(batch, embedding_dim)``, labels ``(batch,)`` in ``0 .. num_classes-1`` -> scalar.
    """

    normalize_weights = False

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        margin: int = 4,
        lambda_: float = 0.0,
        warn_if_empty: bool = False,
        reduction: str = "mean",
    ):
        super().__init__(num_classes, embedding_dim, warn_if_empty=warn_if_empty, reduction=reduction)
        self.margin = check_integer("margin", margin, minimum=1)
        self.lambda_ = lambda_

    @property
    def lambda_(self) -> float:
        """Weight of the plain ``cos`` in the target logit, ``(lambda cos + psi) / (1 + lambda)``."""
        return self._lambda

    @lambda_.setter
    def lambda_(self, value: float) -> None:
        self._lambda = check_non_negative("lambda_", value)

    def logits(self, embeddings: Tensor, labels: Tensor | None = None) -> Tensor:
        """``(batch, num_classes)`` logits; with ``labels``, the true class's logit carries the margin."""
        work_dtype = torch.promote_types(embeddings.dtype, torch.float32)
        weight = self.weight_like(embeddings).to(work_dtype)
        x = embeddings.to(work_dtype)
        if self.normalize_weights:
            weight = F.normalize(weight, dim=1)
        logits = x @ weight.T
        if labels is None:
            return logits
        labels = labels.to(device=embeddings.device).unsqueeze(1)
        norms = x.norm(dim=1, keepdim=True) * weight.norm(dim=1)[labels]
        cosine = logits.gather(1, labels) / norms.clamp_min(torch.finfo(work_dtype).tiny)
        target = norms * (self.lambda_ * cosine + psi(cosine, self.margin)) / (1.0 + self.lambda_)
        return logits.scatter(1, labels, target)

    def compute_loss(self, embeddings: Tensor, labels: Tensor, indices_tuple=None) -> LossTerms:
        labels = self.check_class_labels(labels)
        terms = F.cross_entropy(self.logits(embeddings, labels), labels, reduction="none")
        return LossTerms(terms.to(embeddings.dtype), what="sample")

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, margin={self.margin}, lambda_={self.lambda_}"


class SphereFaceLoss(LargeMarginSoftmaxLoss):
    r"""SphereFace / A-softmax (Liu, Wen, Yu, Li, Raj, Song, CVPR 2017): L-softmax on unit class weights.

    .. math::
        \ell(x) = -\log \frac{e^{f_y}}{e^{f_y} + \sum_{j \ne y} e^{\|x\| \cos\theta_j}},\qquad
        f_y = \|x\| \frac{\lambda \cos\theta_y + \psi(\theta_y)}{1 + \lambda}

    (SphereFace eq. (7) with the annealing of its reference code). The class weights are
    normalised to ``||W|| = 1``, the embeddings are not, there is no bias.

    Defaults and sources: ``m = 4`` (the paper's choice, also pytorch-metric-learning's).
    The authors' Caffe code anneals ``lambda = max(1000 / (1 + 0.12 step), 5)`` (see
    :func:`annealed_lambda`) and so trains most steps at ``lambda = 5``: our default is that
    final value, ``lambda_ = 5``; ``lambda_ = 0`` is eq. (7) exactly and equals
    pytorch-metric-learning's ``SphereFaceLoss(margin=4, scale=1)``.
    """

    normalize_weights = True

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        margin: int = 4,
        lambda_: float = 5.0,
        warn_if_empty: bool = False,
        reduction: str = "mean",
    ):
        super().__init__(
            num_classes, embedding_dim, margin=margin, lambda_=lambda_, warn_if_empty=warn_if_empty, reduction=reduction
        )
