"""Training the sweep: one network per temperature and seed (:func:`train_one`), all of them
side by side in worker processes (:func:`run_sweep`, :mod:`dmlnotes.parallel`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ...checks import check_positive
from ...data import ClassBalancedBatchSampler, glyphs_split, load_cub
from ...device import get_device, seed_everything
from ...losses import NormSoftmaxLoss
from ...metrics import recall_at_k
from ...parallel import cpu_threads, run_jobs
from ...training import embed, fit
from .config import CUB, CUB_STEPS_PER_EPOCH, TABLE1_TEMPERATURES, SweepConfig, resolve_setup
from .results import RunResult, SweepResult
from .signal import diagnostic_batches, hard_share, training_signal


# Checks -----------------------------------------------------------------------------------
def _check_temperatures(temperatures) -> list[float]:
    temperatures = [temperatures] if isinstance(temperatures, (int, float)) else list(temperatures)
    if not temperatures:
        raise ValueError("temperatures must hold at least one temperature > 0, got none")
    checked = [check_positive("temperature", t) for t in temperatures]
    if len(set(checked)) != len(checked):
        raise ValueError(f"temperatures must be distinct, got {temperatures}")
    return checked


def _check_seeds(seeds) -> list[int]:
    seeds = [seeds] if isinstance(seeds, int) else list(seeds)
    if not seeds:
        raise ValueError("seeds must hold at least one integer seed, got none")
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise ValueError(f"seeds must be integers, got {seed!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {seeds}")
    return [int(s) for s in seeds]


# Data and models --------------------------------------------------------------------------
def load_data(config: SweepConfig, root: str | Path | None = None):
    """``(train_set, test_set)`` of the setup: glyphs split in half, or CUB classes 1-100 / 101-200.

    For CUB a missing folder raises :class:`~dmlnotes.data.DatasetNotFoundError` with the
    loader's message (where it looked, where to download it).
    """
    if config.name == "glyphs":
        return glyphs_split()
    return (load_cub(root, "train", image_size=config.image_size), load_cub(root, "test", image_size=config.image_size))


def default_model_factory(config: SweepConfig) -> Callable[[int], nn.Module]:
    """``embedding_dim -> model``: the small CNN for glyphs, the ImageNet ResNet-50 head for CUB."""
    if config.name == "glyphs":
        from ...models import ConvEmbedding

        return lambda dim: ConvEmbedding(dim, width=config.width)
    from ...models import resnet50_embedding

    return lambda dim: resnet50_embedding(dim, pretrained=True)


def check_cub_device(device: torch.device, allow_cpu: bool) -> None:
    """The CUB setup trains ResNet-50s for hours: refuse to start it on a CPU unless asked."""
    if device.type != "cuda" and not allow_cpu:
        raise RuntimeError(
            f"the 'cub' setup trains an ImageNet ResNet-50 for {CUB.steps // CUB_STEPS_PER_EPOCH} epochs per "
            f"temperature and seed and needs a CUDA GPU, but the device is {device.type!r} "
            f"(torch.cuda.is_available() is {torch.cuda.is_available()}). Run it on a GPU machine "
            "(dmlnotes-temperature-sweep --setup cub), use the 'glyphs' setup here, or pass allow_cpu=True "
            "(--allow-cpu) for a tiny test."
        )


# One run and the sweep --------------------------------------------------------------------
def _sgd(params, config: SweepConfig) -> torch.optim.SGD:
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


def _new_parameters(model: nn.Module) -> list[nn.Parameter]:
    new = getattr(model, "new_parameters", None)
    return list(new()) if callable(new) else []


def train_one(
    config: SweepConfig,
    temperature: float,
    seed: int,
    train_set,
    test_set,
    model_factory: Callable[[int], nn.Module],
    device: torch.device,
) -> tuple[RunResult, nn.Module, NormSoftmaxLoss]:
    """Train one network at ``temperature`` with ``seed`` and measure it."""
    start = time.perf_counter()
    seed_everything(seed)
    model = model_factory(config.embedding_dim)
    loss_fn = NormSoftmaxLoss(train_set.num_classes, model.embedding_dim, temperature=temperature)
    sampler = ClassBalancedBatchSampler(train_set.labels, config.classes_per_batch, config.samples_per_class, seed=seed)
    losses: list[float] = []
    if config.warmup_steps:
        # Zhai & Wu's warm-up: only the layers that are not pretrained, and the class weights.
        warmup = _sgd(_new_parameters(model) + list(loss_fn.parameters()), config)
        history = fit(
            model,
            loss_fn,
            train_set,
            batch_sampler=sampler,
            steps=config.warmup_steps,
            optimizer=warmup,
            device=device,
            progress=False,
        )
        losses += history.losses
    optimizer = _sgd(list(model.parameters()) + list(loss_fn.parameters()), config)
    # Stepped after every optimiser step: after step s in lr_drop_steps, step s + 1 on uses the dropped rate.
    scheduler = torch.optim.lr_scheduler.MultiStepLR(
        optimizer, milestones=config.lr_drop_steps, gamma=config.lr_drop_factor
    )
    history = fit(
        model,
        loss_fn,
        train_set,
        batch_sampler=sampler,
        steps=config.steps,
        optimizer=optimizer,
        scheduler=scheduler,
        device=device,
        progress=False,
    )
    losses += history.losses
    finite = bool(np.isfinite(losses).all())
    embeddings = embed(model, test_set, batch_size=config.eval_batch_size, device=device)
    recall = (
        recall_at_k(embeddings, test_set.labels, ks=1, metric="cosine")[1] if torch.isfinite(embeddings).all() else 0.0
    )
    signal = training_signal(model, loss_fn, train_set, diagnostic_batches(train_set, config), device=device)
    result = RunResult(
        temperature=float(temperature),
        seed=int(seed),
        recall_at_1=float(recall),
        final_loss=float(np.mean(losses[-10:])),
        train_accuracy=float(signal.correct.mean()),
        median_p_true=float(np.median(signal.p_true)),
        hard_share=hard_share(signal.p_true, signal.embedding_gradient_norm),
        top_negative_share=float(np.mean(signal.top_negative_share)),
        mean_gradient_norm=float(signal.embedding_gradient_norm.mean()),
        mean_feature_gradient_norm=float(signal.feature_gradient_norm.mean()),
        seconds=time.perf_counter() - start,
        finite=finite,
        losses=losses,
        signal=signal,
    )
    return result, model, loss_fn


def run_sweep(
    temperatures: Sequence[float] = TABLE1_TEMPERATURES,
    seeds: Sequence[int] = (0, 1),
    setup: str | SweepConfig = "glyphs",
    *,
    data=None,
    root: str | Path | None = None,
    model_factory: Callable[[int], nn.Module] | None = None,
    device: torch.device | str | None = None,
    allow_cpu: bool = False,
    verbose: bool = False,
    keep_models: bool = False,
    workers: int | None = None,
) -> SweepResult:
    """Train one network per (temperature, seed) and measure each: the survey's Table 1.

    Args:
        temperatures: the ``T`` of eq. (19), each > 0 (default Table 1's seven).
        seeds: at least one; each run seeds torch, NumPy and its batch sampler with it.
        setup: ``"glyphs"`` (default, CPU), ``"cub"`` (GPU, CUB-200-2011), or a
            :class:`SweepConfig` (e.g. ``dataclasses.replace(GLYPHS, steps=100)``).
        data: ``(train_set, test_set)`` to use instead of the setup's own data.
        root: the CUB-200-2011 folder (default ``data/CUB_200_2011``).
        model_factory: ``embedding_dim -> model`` instead of the setup's network (e.g. a
            :class:`~dmlnotes.models.BackboneEmbedding` around a tiny CNN in tests).
        device: default :func:`~dmlnotes.device.get_device`.
        allow_cpu: let the ``"cub"`` setup run without a CUDA GPU (tests, tiny runs).
        verbose: print one line per run.
        keep_models: keep each trained network and loss in its run (``run.model``,
            ``run.loss_fn``), e.g. to measure them again; off by default (memory).
        workers: processes that train side by side (default: one per CPU core, one on a GPU;
            see :mod:`dmlnotes.parallel`); each run's result is the same either way.

    Returns:
        A :class:`SweepResult`, runs in the order given: by temperature, then seed.

    Raises:
        ValueError: no temperature, a temperature <= 0, no seed, an unknown setup.
        DatasetNotFoundError: ``"cub"`` without the data set (the message says where to get it).
        RuntimeError: ``"cub"`` without a CUDA GPU (unless ``allow_cpu``), or without the
            ResNet-50 weights.
    """
    temperatures = _check_temperatures(temperatures)
    seeds = _check_seeds(seeds)
    config = resolve_setup(setup)
    device = get_device(device)
    train_set, test_set = data if data is not None else load_data(config, root)
    if config.name == "cub":
        check_cub_device(device, allow_cpu)
    model_factory = model_factory or default_model_factory(config)
    start = time.perf_counter()
    jobs = [
        (config, temperature, seed, train_set, test_set, model_factory, device)
        for temperature in temperatures
        for seed in seeds
    ]
    with cpu_threads(config.cpu_threads):  # each worker process runs single-threaded anyway
        trained = run_jobs(train_one, jobs, workers, device)
    runs = []
    for run, model, loss_fn in trained:
        if keep_models:
            run.model, run.loss_fn = model, loss_fn
        runs.append(run)
        if verbose:
            print(
                f"T={run.temperature:<6g} seed={run.seed:<3d} R@1={100 * run.recall_at_1:5.1f}%  "
                f"loss={run.final_loss:8.3f}  {run.seconds:6.1f} s",
                flush=True,
            )
    return SweepResult(config.name, config, runs, str(device), time.perf_counter() - start)
