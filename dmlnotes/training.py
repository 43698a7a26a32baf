"""Training: one ``fit`` function for every loss of the collection, and ``embed``.

``fit`` draws batches from a batch sampler (class-balanced P x K by default), lets an
optional miner choose pairs or triplets, steps the optimiser over the model's *and the
loss's* parameters (proxies, class weights), steps an optional learning-rate scheduler,
shows a progress bar and can record 2-D embedding snapshots every N steps for the
animations of :mod:`dmlnotes.plots`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

from .checks import check_positive_int
from .data.samplers import ClassBalancedBatchSampler
from .device import get_device
from .losses.base import LossStats

PROGRESS_ENV_VAR = "DMLNOTES_PROGRESS"


@dataclass
class Snapshot:
    """Embeddings of the snapshot inputs after ``step`` optimiser steps."""

    step: int
    embeddings: np.ndarray


@dataclass
class TrainingHistory:
    """What ``fit`` recorded: loss per step, loss statistics, snapshots, time taken."""

    losses: list[float] = field(default_factory=list)
    stats: list[LossStats | None] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def steps(self) -> int:
        return len(self.losses)

    def active_fractions(self) -> np.ndarray:
        """Share of active (non-zero) terms per step, NaN where the loss kept no statistics."""
        return np.array([s.active_fraction if s is not None else np.nan for s in self.stats])

    def smoothed_losses(self, window: int = 10) -> np.ndarray:
        """Moving average of the loss over ``window`` steps (for readable curves)."""
        losses = np.asarray(self.losses, dtype=float)
        if window <= 1 or losses.size < window:
            return losses
        return np.convolve(losses, np.ones(window) / window, mode="valid")


def progress_enabled(progress: bool | None) -> bool:
    """Show progress bars unless turned off here or by ``DMLNOTES_PROGRESS=0``."""
    if progress is not None:
        return progress
    return os.environ.get(PROGRESS_ENV_VAR, "1") != "0"


@torch.no_grad()
def embed(model: nn.Module, inputs, batch_size: int = 1024, device: torch.device | str | None = None) -> Tensor:
    """Embeddings of ``inputs`` (a tensor or a data set with ``get_batch``) as a CPU tensor.

    Runs the model in eval mode (batch norm uses its running statistics) and restores
    its previous mode afterwards.
    """
    batch_size = check_positive_int("batch_size", batch_size)
    if not isinstance(inputs, Tensor) and not hasattr(inputs, "get_batch"):
        raise ValueError(f"inputs must be a tensor or a data set with get_batch(), got {type(inputs).__name__}")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        total = inputs.shape[0] if isinstance(inputs, Tensor) else len(inputs)
        chunks = []
        for start in range(0, total, batch_size):
            stop = min(start + batch_size, total)
            batch = inputs[start:stop] if isinstance(inputs, Tensor) else inputs.get_batch(range(start, stop))[0]
            chunks.append(model(batch.to(device)).float().cpu())
        return torch.cat(chunks) if chunks else torch.empty(0)
    finally:
        model.train(was_training)


def default_batch_sampler(labels: Tensor, seed: int = 0) -> ClassBalancedBatchSampler:
    """P x K batches: up to 16 classes with 4 samples each."""
    num_classes = int(torch.unique(labels).numel())
    return ClassBalancedBatchSampler(labels, classes_per_batch=min(16, num_classes), samples_per_class=4, seed=seed)


def fit(
    model: nn.Module,
    loss_fn: nn.Module,
    train_set,
    *,
    miner: nn.Module | None = None,
    batch_sampler: Iterable[Sequence[int]] | None = None,
    epochs: int | None = None,
    steps: int | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: LRScheduler | None = None,
    lr: float = 1e-3,
    loss_lr: float | None = None,
    weight_decay: float = 0.0,
    device: torch.device | str | None = None,
    snapshot_every: int | None = None,
    snapshot_inputs: Tensor | None = None,
    callbacks: Sequence[Callable[[int, TrainingHistory], None]] = (),
    progress: bool | None = None,
) -> TrainingHistory:
    """Train ``model`` with ``loss_fn`` on ``train_set`` and return the history.

    Args:
        model: maps a batch of inputs to embeddings.
        loss_fn: a loss called as ``loss_fn(embeddings, labels[, indices_tuple])``.
        train_set: a data set with ``labels`` and ``get_batch(indices)``.
        miner: optional; called as ``miner(embeddings, labels)``, its tuple goes to the loss.
        batch_sampler: yields lists of indices; default P x K (16 classes x 4 samples).
            It is cycled when ``steps`` exceeds its length.
        epochs, steps: how long to train (give one; default one pass of the sampler).
        optimizer: default Adam over the model's parameters (``lr``) and the loss's
            parameters (``loss_lr``, default ``lr``; proxies often want 10-100x more).
        scheduler: a ``torch.optim.lr_scheduler`` scheduler built on ``optimizer``, stepped
            once after every optimiser step, so its step counts are optimiser steps (e.g.
            ``MultiStepLR(optimizer, milestones=[100])``: steps 1-100 at the initial rate,
            step 101 on at a tenth). Needs ``optimizer``; ``ReduceLROnPlateau`` needs a
            metric: step it in a callback.
        device: default :func:`dmlnotes.device.get_device`.
        snapshot_every: record embeddings of ``snapshot_inputs`` before training, every
            this many steps, and at the end (for animations).
        callbacks: called as ``callback(step, history)`` after every optimiser step
            (``step`` counts from 1, after the scheduler's step); use them for other
            schedules, such as heating up.
        progress: show a progress bar (default on unless ``DMLNOTES_PROGRESS=0``).

    Raises:
        ValueError: a bad argument, e.g. a scheduler that is not bound to ``optimizer``.
        FloatingPointError: the embeddings or the loss are NaN or infinite at some step
            (nothing is updated with them); the message names the step.
    """
    from tqdm.auto import tqdm

    device = get_device(device)
    sampler = batch_sampler if batch_sampler is not None else default_batch_sampler(train_set.labels)
    if epochs is not None and steps is not None:
        raise ValueError("give epochs or steps, not both")
    if steps is None:
        steps = check_positive_int("epochs", 1 if epochs is None else epochs) * len(sampler)
        if steps == 0:
            raise ValueError("the batch sampler has no batch in an epoch; give steps, or a sampler with batches")
    else:
        steps = check_positive_int("steps", steps)
    if snapshot_every is not None and snapshot_inputs is None:
        raise ValueError("snapshot_every needs snapshot_inputs (the inputs to embed for the animation)")
    if scheduler is not None:
        _check_scheduler(scheduler, optimizer)

    model.to(device)
    loss_fn.to(device)
    if optimizer is None:
        groups = [{"params": list(model.parameters()), "lr": lr}]
        loss_params = [p for p in loss_fn.parameters() if p.requires_grad]
        if loss_params:
            groups.append({"params": loss_params, "lr": loss_lr if loss_lr is not None else lr})
        optimizer = torch.optim.Adam(groups, weight_decay=weight_decay)

    history = TrainingHistory()

    def take_snapshot(step: int) -> None:
        history.snapshots.append(Snapshot(step, embed(model, snapshot_inputs, device=device).numpy()))

    if snapshot_every:
        take_snapshot(0)
    start = time.perf_counter()
    model.train()
    batches = _cycle(sampler)
    with tqdm(total=steps, disable=not progress_enabled(progress), leave=False, desc=type(loss_fn).__name__) as bar:
        for step in range(1, steps + 1):
            inputs, labels = train_set.get_batch(next(batches))
            inputs, labels = inputs.to(device), labels.to(device)
            embeddings = model(inputs)
            _stop_unless_finite("the model's embeddings", embeddings, step, steps)
            if miner is not None:
                loss = loss_fn(embeddings, labels, miner(embeddings, labels))
            else:
                loss = loss_fn(embeddings, labels)
            _stop_unless_finite("the loss", loss, step, steps)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            history.losses.append(float(loss.detach()))
            history.stats.append(getattr(loss_fn, "last_stats", None))
            if snapshot_every and (step % snapshot_every == 0 or step == steps):
                take_snapshot(step)
            for callback in callbacks:
                callback(step, history)
            bar.update(1)
            if step % 10 == 0 or step == steps:
                bar.set_postfix(loss=f"{history.losses[-1]:.4f}")
    history.seconds = time.perf_counter() - start
    return history


def _check_scheduler(scheduler, optimizer: torch.optim.Optimizer | None) -> None:
    if not isinstance(scheduler, LRScheduler):
        raise ValueError(f"scheduler must be a torch.optim.lr_scheduler.LRScheduler, got {type(scheduler).__name__}")
    if isinstance(scheduler, ReduceLROnPlateau):
        raise ValueError("ReduceLROnPlateau steps on a metric, not once per optimiser step: step it in a callback")
    if optimizer is None:
        raise ValueError("scheduler needs the optimizer it was built on: pass it as optimizer=")
    if scheduler.optimizer is not optimizer:
        raise ValueError("scheduler is bound to another optimizer than the one given to fit: build it on optimizer")


def _stop_unless_finite(what: str, values: Tensor, step: int, steps: int) -> None:
    if not bool(torch.isfinite(values.detach()).all()):
        raise FloatingPointError(
            f"{what} became NaN or infinite at step {step} of {steps}; training stopped before the optimiser "
            "step. Usual causes: a learning rate too large, a temperature too small (a scale too large), "
            "or float16 overflow (train in float32)"
        )


def _cycle(sampler: Iterable[Sequence[int]]):
    while True:
        empty = True
        for batch in sampler:
            empty = False
            yield batch
        if empty:
            raise ValueError("the batch sampler yielded no batch")
