"""What the temperature did to the training signal, measured on fixed training batches (notebook 12).

For each sample (:class:`TrainingSignal`): its softmax probability of its true class, the
norm of the gradient its loss sends to its feature (eq. (23)) and to its embedding, and how
much of the push away from wrong classes goes to the nearest wrong class; over the samples,
the share of the summed gradient norm carried by the 10 % hardest (lowest true-class
probability, :func:`hard_share`).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...data import ClassBalancedBatchSampler
from ...losses import NormSoftmaxLoss, embedding_gradient, feature_gradient
from .config import SweepConfig

HARD_FRACTION = 0.1
"""The hardest samples whose share of the gradient is reported: the 10 % with the lowest true-class probability."""


@dataclass
class TrainingSignal:
    """What the loss at temperature ``T`` asks of each training sample, one value per sample.

    Attributes:
        p_true: softmax probability of the sample's own class, ``softmax(cos / T)_y``.
        correct: whether its class has the largest logit.
        embedding_gradient_norm: ``||dl/dx||`` of the sample's own loss with respect to the
            network's output ``x`` (what reaches the network's weights).
        feature_gradient_norm: ``||dl/df||`` with respect to the normalised feature
            ``f = x / ||x||``: eq. (23), ``(1/T) ||sum_m (q_m - p_m) w_m||``.
        top_negative_share: of the probability the softmax gives to wrong classes, the part
            on the most likely wrong class, ``max_{c != y} q_c / sum_{c != y} q_c``: near
            ``1 / (C - 1)`` when the push is spread evenly over all wrong classes, near 1 when
            it goes to the single nearest one.
    """

    p_true: np.ndarray
    correct: np.ndarray
    embedding_gradient_norm: np.ndarray
    feature_gradient_norm: np.ndarray
    top_negative_share: np.ndarray


def diagnostic_batches(train_set, config: SweepConfig) -> list[list[int]]:
    """The training batches on which the training signal is measured: P x K batches as in
    training, from a sampler with a fixed seed, so every run is measured on the same images."""
    batch_size = config.classes_per_batch * config.samples_per_class
    sampler = ClassBalancedBatchSampler(
        train_set.labels,
        config.classes_per_batch,
        config.samples_per_class,
        num_batches=max(math.ceil(config.diagnostic_samples / batch_size), 1),
        seed=12345,
    )
    return list(sampler)


@contextlib.contextmanager
def _batch_norm_stats_kept(model: nn.Module):
    """Run ``model`` in train mode (batch statistics) without changing its running statistics."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [{name: buffer.clone() for name, buffer in m.named_buffers(recurse=False)} for m in norms]
    was_training = model.training
    model.train()
    try:
        yield
    finally:
        model.train(was_training)
        for m, buffers in zip(norms, saved):
            for name, value in buffers.items():
                getattr(m, name).copy_(value)


@torch.no_grad()
def training_signal(model: nn.Module, loss_fn: NormSoftmaxLoss, train_set, batches, device=None) -> TrainingSignal:
    """What the loss asks of each sample of the training ``batches``, as training sees them.

    The network runs in train mode (batch norm with the batch's statistics, as in every
    training step; its running statistics are left unchanged). Gradients are those of each
    sample's own loss (not divided by the batch size), in closed form: eq. (23) for the
    normalised feature (:func:`~dmlnotes.losses.feature_gradient`) and its projection
    through the normalisation for the raw embedding
    (:func:`~dmlnotes.losses.embedding_gradient`); both carry the factor ``1 / T``.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    alpha = 1.0 / loss_fn.temperature
    weights = loss_fn.weight.detach().float()
    parts: dict[str, list[Tensor]] = {name: [] for name in TrainingSignal.__dataclass_fields__}
    with _batch_norm_stats_kept(model):
        for batch in batches:
            inputs, labels = train_set.get_batch(batch)
            embeddings = model(inputs.to(device)).float()
            labels = labels.to(device)
            probabilities = loss_fn.class_probabilities(embeddings)
            p_true = probabilities.gather(1, labels[:, None])[:, 0]
            wrong = probabilities.scatter(1, labels[:, None], 0.0)
            parts["p_true"].append(p_true)
            parts["correct"].append(probabilities.argmax(dim=1) == labels)
            parts["embedding_gradient_norm"].append(embedding_gradient(embeddings, weights, labels, alpha).norm(dim=1))
            features = F.normalize(embeddings, dim=1)
            parts["feature_gradient_norm"].append(
                feature_gradient(features, F.normalize(weights, dim=1), labels, alpha).norm(dim=1)
            )
            # max over wrong classes / total on wrong classes; 1 - p_true can round to 0 in float32.
            parts["top_negative_share"].append(wrong.max(dim=1).values / wrong.sum(dim=1).clamp_min(1e-30))
    arrays = {name: torch.cat(values).cpu() for name, values in parts.items()}
    return TrainingSignal(
        **{
            name: value.numpy() if value.dtype == torch.bool else value.double().numpy()
            for name, value in arrays.items()
        }
    )


def hard_share(p_true: np.ndarray, gradient_norms: np.ndarray, fraction: float = HARD_FRACTION) -> float:
    """Share of the summed gradient norm carried by the ``fraction`` of samples with the lowest ``p_true``."""
    p_true, gradient_norms = np.asarray(p_true, dtype=float), np.asarray(gradient_norms, dtype=float)
    if p_true.shape != gradient_norms.shape or p_true.ndim != 1 or p_true.size == 0:
        raise ValueError("p_true and gradient_norms must be 1-D arrays of the same non-zero length")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction!r}")
    total = gradient_norms.sum()
    if total == 0:
        return float("nan")
    count = max(int(round(fraction * p_true.size)), 1)
    hardest = np.argsort(p_true, kind="stable")[:count]
    return float(gradient_norms[hardest].sum() / total)
