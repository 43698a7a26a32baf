"""Softmax with a temperature, and the closed-form gradients of the heated-up softmax.

Survey section 2.2. Two uses of one idea, ``softmax(z / T)``:

* Hinton et al. (2015), eq. (18): a temperature ``T > 1`` softens the softmax so that a
  student network can learn from the teacher's whole output distribution
  (:func:`softened_softmax`, :func:`soft_target_cross_entropy`).
* Zhang et al. (2018), eqs. (20)-(23): with normalised features and class weights the
  logits are cosines in ``[-1, 1]`` and ``alpha = 1 / T`` decides how much gradient each
  sample receives (:func:`logit_gradient`, :func:`feature_gradient`,
  :func:`embedding_gradient`). These are written out by hand, without autograd, so that a
  notebook can check them against ``torch.autograd``.

Notation of eqs. (20)-(23): ``z_m = w_m . f`` is the logit of class ``m`` before scaling,
``q(m|x) = softmax(alpha * z)_m`` the prediction and ``p(m|x)`` the one-hot label.

The module also holds two small input checks shared by the softmax-type losses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..checks import check_class_labels, check_finite_rows, check_positive


def _check_logits(logits: Tensor) -> None:
    if not isinstance(logits, Tensor) or not logits.is_floating_point() or logits.dim() < 1:
        raise ValueError("logits must be a floating-point tensor with the classes along the last dimension")
    if logits.numel() and logits.dim() > 0:
        check_finite_rows(logits.reshape(-1, logits.shape[-1]), "logits")


def _check_rows(name: str, value: Tensor) -> None:
    if not isinstance(value, Tensor) or value.dim() != 2 or not value.is_floating_point():
        raise ValueError(f"{name} must be a 2-D floating-point tensor, got {_describe(value)}")
    check_finite_rows(value, name)


def _check_probabilities(target_probs: Tensor) -> None:
    """Non-negative rows summing to 1 (within the dtype's rounding)."""
    rows = target_probs.detach().reshape(-1, target_probs.shape[-1]).double()
    if rows.numel() == 0:
        return
    check_finite_rows(rows, "target_probs")
    if bool((rows < 0).any()):
        raise ValueError(f"target_probs must be non-negative, got a minimum of {float(rows.min()):.3g}")
    tolerance = 100 * torch.finfo(target_probs.dtype).eps
    off = (rows.sum(dim=1) - 1).abs()
    if bool((off > tolerance).any()):
        row = int(off.argmax())
        raise ValueError(f"target_probs rows must sum to 1; row {row} sums to {float(rows[row].sum()):.6g}")


def _describe(value) -> str:
    if isinstance(value, Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return type(value).__name__


# Eq. (18): Hinton's softened softmax ---------------------------------------------------
def softened_softmax(logits: Tensor, temperature: float = 1.0) -> Tensor:
    """Eq. (18): ``q_i = exp(z_i / T) / sum_j exp(z_j / T)`` over the last dimension.

    ``T = 1`` is the ordinary softmax, ``T > 1`` flattens it towards uniform, ``T < 1``
    sharpens it towards one-hot. Stable for any finite ``z / T`` (``torch.softmax``
    subtracts the maximum first).

    Args:
        logits: ``(..., num_classes)``.
        temperature: ``T > 0``.

    Returns:
        Probabilities of the same shape, summing to 1 along the last dimension.
    """
    _check_logits(logits)
    temperature = check_positive("temperature", temperature)
    return torch.softmax(logits / temperature, dim=-1)


def soft_target_cross_entropy(
    logits: Tensor, target_probs: Tensor, temperature: float = 1.0, reduction: str = "mean"
) -> Tensor:
    """Eq. (18): ``L_soft = -sum_i p_i log q_i`` with ``q = softmax(z / T)``.

    ``p`` are soft targets (in distillation: the teacher's softened softmax). With one-hot
    ``p`` this is the usual cross-entropy of ``z / T``. Hinton et al. multiply this loss by
    ``T^2`` when they mix it with a hard-label loss, so that its gradient, which scales as
    ``1 / T``, keeps its size; eq. (18) and this function do not.

    Args:
        logits: ``(batch, num_classes)`` (any leading shape works).
        target_probs: same shape, non-negative rows summing to 1.
        temperature: ``T > 0``.
        reduction: ``"mean"`` over the leading dimensions, ``"sum"`` or ``"none"``.

    Returns:
        A scalar, or the per-sample losses of shape ``logits.shape[:-1]`` for ``"none"``.
    """
    _check_logits(logits)
    if not isinstance(target_probs, Tensor) or target_probs.shape != logits.shape:
        raise ValueError(
            f"target_probs must have the shape of logits {tuple(logits.shape)}, got {_describe(target_probs)}"
        )
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    _check_probabilities(target_probs)
    temperature = check_positive("temperature", temperature)
    log_q = F.log_softmax(logits / temperature, dim=-1)
    per_sample = -(target_probs.to(log_q.dtype) * log_q).sum(dim=-1)
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    return per_sample


# Eqs. (22)-(23): gradients of the heated-up softmax, in closed form ---------------------
def logit_gradient(logits: Tensor, labels: Tensor, alpha: float) -> Tensor:
    """Eq. (22): ``dL/dz_m = alpha * (q(m|x) - p(m|x))`` for each sample.

    ``L`` is one sample's cross-entropy of the scaled logits ``alpha * z`` (eq. (21)); the
    gradient is taken with respect to the *unscaled* logits ``z``, hence the factor
    ``alpha``. A batch-mean loss has ``1 / batch`` times these gradients.

    Args:
        logits: ``(batch, num_classes)``, the unscaled ``z`` (cosines for normalised
            features and weights).
        labels: ``(batch,)`` class ids.
        alpha: ``alpha = 1 / T > 0``.

    Returns:
        ``(batch, num_classes)``; each row sums to 0.
    """
    _check_rows("logits", logits)
    alpha = check_positive("alpha", alpha)
    labels = check_class_labels(labels, logits.shape[1]).to(logits.device)
    if labels.shape[0] != logits.shape[0]:
        raise ValueError(f"logits and labels disagree on the batch size: {logits.shape[0]} and {labels.shape[0]}")
    predicted = torch.softmax(alpha * logits, dim=1)
    one_hot = F.one_hot(labels, logits.shape[1]).to(logits.dtype)
    return alpha * (predicted - one_hot)


def feature_gradient(features: Tensor, weights: Tensor, labels: Tensor, alpha: float) -> Tensor:
    """Eq. (23): ``dL/df = alpha * sum_m (q(m|x) - p(m|x)) w_m`` for each sample.

    The logits are ``z_m = w_m . f`` exactly as given: nothing is normalised here. To
    match :class:`~dmlnotes.losses.heated_up_softmax.HeatedUpSoftmaxLoss`, pass the
    *normalised* features ``f = x / ||x||`` and the normalised class weights; the result is
    then the gradient with respect to ``f``, not with respect to the network's raw output
    ``x`` (for that, see :func:`embedding_gradient`).

    Args:
        features: ``(batch, dim)``, the ``f`` of eq. (23).
        weights: ``(num_classes, dim)``, one row ``w_m`` per class.
        labels: ``(batch,)`` class ids.
        alpha: ``alpha = 1 / T > 0``.

    Returns:
        ``(batch, dim)``: the gradient of each sample's own loss (not divided by the batch).
    """
    _check_rows("features", features)
    _check_rows("weights", weights)
    if features.shape[1] != weights.shape[1]:
        raise ValueError(f"features and weights differ in dimension: {features.shape[1]} and {weights.shape[1]}")
    weights = weights.to(features.dtype)
    return logit_gradient(features @ weights.T, labels, alpha) @ weights


def embedding_gradient(embeddings: Tensor, weights: Tensor, labels: Tensor, alpha: float) -> Tensor:
    """Gradient of each sample's heated-up softmax loss with respect to the raw embedding ``x``.

    The loss sees ``f = x / ||x||`` and normalised weights. The chain rule through the
    normalisation keeps only the part of eq. (23)'s gradient ``g`` tangent to the sphere
    and divides by the norm: ``dL/dx = (g - (g . f) f) / ||x||``. So the radial part of
    ``g`` never moves a sample, and a long embedding moves slowly. Embeddings must be
    non-zero.

    Args:
        embeddings: ``(batch, dim)``, the network's output ``x``.
        weights: ``(num_classes, dim)`` class weights (normalised here).
        labels: ``(batch,)`` class ids.
        alpha: ``alpha = 1 / T > 0``.

    Returns:
        ``(batch, dim)``: the gradient of each sample's own loss (not divided by the batch).
    """
    _check_rows("embeddings", embeddings)
    _check_rows("weights", weights)
    norms = embeddings.norm(dim=1, keepdim=True)
    if bool((norms == 0).any()):
        rows = (norms.flatten() == 0).nonzero().flatten().tolist()
        raise ValueError(f"embeddings must be non-zero (the loss sees x / ||x||); rows {rows[:10]} are zero")
    features = embeddings / norms
    gradient = feature_gradient(features, F.normalize(weights.to(embeddings.dtype), dim=1), labels, alpha)
    radial = (gradient * features).sum(dim=1, keepdim=True) * features
    return (gradient - radial) / norms
