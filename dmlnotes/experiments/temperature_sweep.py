"""The temperature sweep of the survey's Table 1 (section 2.2, eq. (19); Zhai & Wu 2018).

Zhai & Wu trained the normalised softmax (:class:`~dmlnotes.losses.NormSoftmaxLoss`) on
CUB-200-2011 at seven temperatures and measured Recall@1 on the unseen test classes; the
survey copies their row as Table 1 (:data:`TABLE1_TEMPERATURES`, :data:`TABLE1_RECALL_AT_1`).
:func:`run_sweep` repeats that experiment: for each temperature ``T`` and seed it trains
a fresh network with ``NormSoftmaxLoss(num_train_classes, dim, temperature=T)`` on
class-balanced batches and measures

* Recall@1 on the held-out test classes, by cosine nearest neighbour with the query
  excluded (:func:`dmlnotes.metrics.recall_at_k`);
* on fixed training batches, what the temperature did to the training signal
  (:class:`TrainingSignal`): each sample's softmax probability of its true class, the
  norm of the gradient its loss sends to its feature (eq. (23)) and to its embedding, how
  much of the push away from wrong classes goes to the nearest wrong class, and the share
  of the summed gradient norm carried by the 10 % hardest samples (lowest true-class
  probability).

Two setups, chosen by name (``setup="glyphs"`` or ``"cub"``, or a :class:`SweepConfig`):

``"glyphs"`` (default; seconds per network on one core of a laptop CPU; the sweep prints its time)
    Glyphs split class-disjointly (148 train, 147 test classes), the shared small CNN
    (:class:`~dmlnotes.models.ConvEmbedding`, width 16, 64-d) trained from scratch, batches
    of 16 classes x 4 images, 300 steps of SGD with momentum 0.9, learning rate 0.01,
    weight decay 1e-4. SGD, as Zhai & Wu: the loss's gradient carries a factor ``1 / T``
    (eq. (22)), and with SGD that factor reaches the weights. Adam divides every gradient
    by its running root-mean-square, which cancels a constant factor, so an Adam sweep
    measures only how ``T`` reweights samples and classes, not how it rescales the step.

``"cub"`` (a CUDA GPU and the data set)
    Zhai & Wu's recipe (``azgo14/classification_metric_learning``): CUB-200-2011 from
    ``data/CUB_200_2011`` (:func:`dmlnotes.data.load_cub`; classes 1-100 train, 101-200
    test), an ImageNet ResNet-50 with global average pooling, LayerNorm without affine,
    L2 normalisation in the loss (:func:`dmlnotes.models.resnet50_embedding`; 2048-d by
    default, so no extra linear layer), batches of 3 classes x 25 images, SGD with
    momentum 0.9, weight decay 1e-4, learning rate 0.001 dropped tenfold after 15 of 30
    epochs, and a first epoch that trains only the new layers and the class weights.
    Needs torchvision and the ResNet-50 weights in the torch hub cache; about an hour per
    run on one GPU, so run it as a script (:func:`main`)::

        dmlnotes-temperature-sweep --setup cub --seeds 0 1 --out data/temperature_sweep_cub.json

Results save to JSON or CSV (:meth:`SweepResult.save`) and load back
(:meth:`SweepResult.load`), so a notebook shows a sweep run elsewhere.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import check_non_negative_int, check_positive, check_positive_int
from ..data import ClassBalancedBatchSampler
from ..data.paths import data_root
from ..device import get_device, seed_everything
from ..losses import NormSoftmaxLoss, embedding_gradient, feature_gradient
from ..metrics import recall_at_k
from ..parallel import run_jobs
from ..training import embed, fit

TABLE1_TEMPERATURES: tuple[float, ...] = (0.005, 0.01, 0.03, 0.05, 0.1, 0.5, 1.0)
"""The temperatures of the survey's Table 1."""

TABLE1_RECALL_AT_1: tuple[float, ...] = (19.3, 38.8, 57.0, 61.3, 61.6, 54.8, 50.5)
"""Recall@1 (%) on CUB-200-2011 test classes at each of :data:`TABLE1_TEMPERATURES` (survey Table 1, from Zhai & Wu)."""

SETUPS = ("glyphs", "cub")
HARD_FRACTION = 0.1
"""The hardest samples whose share of the gradient is reported: the 10 % with the lowest true-class probability."""


@dataclass(frozen=True)
class SweepConfig:
    """Everything a sweep fixes except the temperature and the seed.

    Attributes:
        name: ``"glyphs"`` or ``"cub"`` (which data and which default network).
        embedding_dim: dimension of the embedding (and of the class weights).
        steps: SGD steps on all parameters, after the warm-up.
        warmup_steps: first steps that train only the new layers and the class weights
            (Zhai & Wu's warm-up epoch; 0 for a network trained from scratch).
        lr: learning rate of SGD (all parameters, class weights included).
        lr_drop_steps: distinct steps (counted from 1 after the warm-up) after which the rate
            is multiplied by ``lr_drop_factor`` (:class:`~torch.optim.lr_scheduler.MultiStepLR`).
        lr_drop_factor: the factor of each drop.
        momentum, weight_decay: of SGD.
        classes_per_batch, samples_per_class: the P x K class-balanced batches.
        width: width of :class:`~dmlnotes.models.ConvEmbedding` (glyphs only).
        image_size: side of the CUB crops (cub only).
        eval_batch_size: images per forward pass when embedding the test set.
        diagnostic_samples: about this many training images (whole P x K batches from a
            sampler with a fixed seed) on which the true-class probability and the
            gradient shares are measured after training.
        cpu_threads: torch's CPU threads during the sweep (restored afterwards), or None
            for torch's default. The glyphs setup uses 1: its convolutions are too small to
            gain much from a second thread (on an idle 2-core CPU about 6.5 s per network
            with 1 thread, 5 s with 2), and two threads slow down several-fold when other
            processes compete for the cores.
    """

    name: str
    embedding_dim: int
    steps: int
    warmup_steps: int = 0
    lr: float = 0.01
    lr_drop_steps: tuple[int, ...] = ()
    lr_drop_factor: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    classes_per_batch: int = 16
    samples_per_class: int = 4
    width: int = 16
    image_size: int = 224
    eval_batch_size: int = 256
    diagnostic_samples: int = 1024
    cpu_threads: int | None = None

    def __post_init__(self):
        if self.name not in SETUPS:
            raise ValueError(f"setup must be one of {SETUPS}, got {self.name!r}")
        for name in (
            "embedding_dim",
            "steps",
            "classes_per_batch",
            "samples_per_class",
            "width",
            "image_size",
            "eval_batch_size",
            "diagnostic_samples",
        ):
            check_positive_int(name, getattr(self, name))
        check_non_negative_int("warmup_steps", self.warmup_steps)
        for step in self.lr_drop_steps:
            check_positive_int("lr_drop_steps", step)
        if len(set(self.lr_drop_steps)) != len(self.lr_drop_steps):
            # MultiStepLR would drop twice at a repeated step
            raise ValueError(f"lr_drop_steps must be distinct, got {self.lr_drop_steps!r}")
        check_positive("lr", self.lr)
        check_positive("lr_drop_factor", self.lr_drop_factor)
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must lie in [0, 1), got {self.momentum!r}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.cpu_threads is not None:
            check_positive_int("cpu_threads", self.cpu_threads)


GLYPHS = SweepConfig(
    name="glyphs",
    embedding_dim=64,
    steps=300,
    lr=0.01,
    classes_per_batch=16,
    samples_per_class=4,
    width=16,
    cpu_threads=1,
)
"""The CPU setup: glyphs, ConvEmbedding (width 16, 64-d) from scratch, 16 x 4 batches, 300 SGD steps, 1 CPU thread."""

CUB_TRAIN_IMAGES = 5864
CUB_STEPS_PER_EPOCH = CUB_TRAIN_IMAGES // 75
CUB = SweepConfig(
    name="cub",
    embedding_dim=2048,
    steps=30 * CUB_STEPS_PER_EPOCH,
    warmup_steps=CUB_STEPS_PER_EPOCH,
    lr=0.001,
    lr_drop_steps=(15 * CUB_STEPS_PER_EPOCH,),
    classes_per_batch=3,
    samples_per_class=25,
    image_size=224,
    eval_batch_size=128,
    diagnostic_samples=750,
)
"""Zhai & Wu's CUB-200-2011 recipe: one warm-up epoch, then 30 epochs (78 steps each) with a tenfold drop after 15."""

CONFIGS = {"glyphs": GLYPHS, "cub": CUB}


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


@dataclass
class RunResult:
    """One trained network: its temperature and seed, retrieval, and training signal.

    The summaries (``train_accuracy`` to ``mean_feature_gradient_norm``) are measured on
    fixed training batches after training (:func:`training_signal`); ``signal`` keeps the
    per-sample values in memory (a loaded file keeps only the summaries). ``hard_share`` is
    the share of the summed embedding-gradient norm carried by the 10 % of samples with the
    lowest ``p_true`` (:func:`hard_share`). ``model`` and ``loss_fn`` are the trained network
    and loss (with their class weights) when the sweep ran with ``keep_models=True``, so a
    notebook can measure them again; None otherwise and in a loaded file.
    """

    temperature: float
    seed: int
    recall_at_1: float
    final_loss: float
    train_accuracy: float
    median_p_true: float
    hard_share: float
    top_negative_share: float
    mean_gradient_norm: float
    mean_feature_gradient_norm: float
    seconds: float
    finite: bool = True
    losses: list[float] = field(default_factory=list, repr=False)
    signal: TrainingSignal | None = field(default=None, repr=False)
    model: nn.Module | None = field(default=None, repr=False, compare=False)
    loss_fn: NormSoftmaxLoss | None = field(default=None, repr=False, compare=False)

    SUMMARY_FIELDS = (
        "temperature",
        "seed",
        "recall_at_1",
        "final_loss",
        "train_accuracy",
        "median_p_true",
        "hard_share",
        "top_negative_share",
        "mean_gradient_norm",
        "mean_feature_gradient_norm",
        "seconds",
        "finite",
    )

    @property
    def p_true(self) -> np.ndarray | None:
        return None if self.signal is None else self.signal.p_true

    def summary(self) -> dict:
        return {name: getattr(self, name) for name in self.SUMMARY_FIELDS}


@dataclass
class SweepResult:
    """All runs of a sweep, with the setup they share; tables, summaries, files."""

    setup: str
    config: SweepConfig
    runs: list[RunResult]
    device: str = "cpu"
    seconds: float = 0.0

    @property
    def temperatures(self) -> list[float]:
        return sorted({run.temperature for run in self.runs})

    @property
    def seeds(self) -> list[int]:
        return sorted({run.seed for run in self.runs})

    def runs_at(self, temperature: float) -> list[RunResult]:
        return [run for run in self.runs if math.isclose(run.temperature, temperature)]

    def values(self, name: str = "recall_at_1", temperature: float | None = None) -> np.ndarray:
        """``name`` of every run at ``temperature``, or an array ``(temperatures, seeds)`` for all."""
        if temperature is not None:
            return np.array([getattr(run, name) for run in self.runs_at(temperature)], dtype=float)
        return np.array([self.values(name, t) for t in self.temperatures], dtype=float)

    def mean_recall(self) -> np.ndarray:
        """Mean Recall@1 in percent per temperature (in the order of :attr:`temperatures`)."""
        return np.array([100 * self.values(temperature=t).mean() for t in self.temperatures])

    def spread_recall(self) -> np.ndarray:
        """Standard deviation over seeds (ddof=0: half the range for two seeds) of Recall@1, in percent,
        per temperature."""
        return np.array([100 * self.values(temperature=t).std() for t in self.temperatures])

    def best_temperature(self) -> float:
        """The temperature with the highest mean Recall@1."""
        return self.temperatures[int(np.argmax(self.mean_recall()))]

    def spearman_with_table1(self) -> float:
        """Spearman rank correlation between our mean Recall@1 row and the survey's Table 1.

        Uses the temperatures present in both (at least 3)."""
        from scipy.stats import spearmanr

        ours, theirs = [], []
        for t, mean in zip(self.temperatures, self.mean_recall()):
            for reference_t, reference in zip(TABLE1_TEMPERATURES, TABLE1_RECALL_AT_1):
                if math.isclose(t, reference_t):
                    ours.append(mean)
                    theirs.append(reference)
        if len(ours) < 3:
            raise ValueError(f"a rank correlation with Table 1 needs at least 3 of its temperatures, got {len(ours)}")
        return float(spearmanr(ours, theirs).statistic)

    def format_table(self) -> str:
        """Recall@1 (%) per temperature: mean, spread and range over seeds, beside Table 1."""
        reference = dict(zip(TABLE1_TEMPERATURES, TABLE1_RECALL_AT_1))
        lines = [f"{'T':>6}  {'R@1 mean':>8}  {'std':>4}  {'min-max':>11}  {'Table 1':>7}"]
        for t, mean, spread in zip(self.temperatures, self.mean_recall(), self.spread_recall()):
            values = 100 * self.values(temperature=t)
            survey = next((f"{v:7.1f}" for rt, v in reference.items() if math.isclose(rt, t)), f"{'-':>7}")
            lines.append(f"{t:>6g}  {mean:8.1f}  {spread:4.1f}  {values.min():5.1f}-{values.max():5.1f}  {survey}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "setup": self.setup,
            "config": dataclasses.asdict(self.config),
            "device": self.device,
            "seconds": self.seconds,
            "table1": {"temperatures": list(TABLE1_TEMPERATURES), "recall_at_1": list(TABLE1_RECALL_AT_1)},
            "runs": [run.summary() for run in self.runs],
        }

    def save(self, path: str | Path) -> Path:
        """Write the results: ``.json`` (setup and runs) or ``.csv`` (one row per run)."""
        path = Path(path)
        if path.suffix not in (".json", ".csv"):
            raise ValueError(f"results files end in .json or .csv, got {path.name!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".json":
            path.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        else:
            with path.open("w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=("setup",) + RunResult.SUMMARY_FIELDS)
                writer.writeheader()
                for run in self.runs:
                    writer.writerow({"setup": self.setup, **run.summary()})
        return path

    @classmethod
    def load(cls, path: str | Path) -> SweepResult:
        """Read a file written by :meth:`save` (per-sample arrays are not stored)."""
        path = Path(path)
        if path.suffix == ".json":
            data = json.loads(path.read_text())
            config = dict(data["config"])
            config["lr_drop_steps"] = tuple(config.get("lr_drop_steps", ()))
            return cls(
                data["setup"],
                SweepConfig(**config),
                [_run_from(row) for row in data["runs"]],
                data.get("device", "?"),
                float(data.get("seconds", 0.0)),
            )
        if path.suffix == ".csv":
            with path.open(newline="") as handle:
                rows = list(csv.DictReader(handle))
            if not rows:
                raise ValueError(f"{path} holds no runs")
            setup = rows[0]["setup"]
            return cls(setup, CONFIGS[setup], [_run_from(row) for row in rows], "?")
        raise ValueError(f"results files end in .json or .csv, got {path.name!r}")


def _run_from(row: dict) -> RunResult:
    values = {}
    for name in RunResult.SUMMARY_FIELDS:
        value = row[name]
        if name == "seed":
            values[name] = int(value)
        elif name == "finite":
            values[name] = value if isinstance(value, bool) else str(value) == "True"
        else:
            values[name] = float(value)
    return RunResult(**values)


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


def resolve_setup(setup: str | SweepConfig) -> SweepConfig:
    """The :class:`SweepConfig` of ``"glyphs"`` or ``"cub"``, or ``setup`` itself."""
    if isinstance(setup, SweepConfig):
        return setup
    if setup not in CONFIGS:
        raise ValueError(f"setup must be one of {SETUPS} (or a SweepConfig), got {setup!r}")
    return CONFIGS[setup]


# Data and models --------------------------------------------------------------------------
def load_data(config: SweepConfig, root: str | Path | None = None):
    """``(train_set, test_set)`` of the setup: glyphs split in half, or CUB classes 1-100 / 101-200.

    For CUB a missing folder raises :class:`~dmlnotes.data.DatasetNotFoundError` with the
    loader's message (where it looked, where to download it).
    """
    if config.name == "glyphs":
        from .comparison import glyphs_split

        return glyphs_split()
    from ..data import load_cub

    return (load_cub(root, "train", image_size=config.image_size), load_cub(root, "test", image_size=config.image_size))


def default_model_factory(config: SweepConfig) -> Callable[[int], nn.Module]:
    """``embedding_dim -> model``: the small CNN for glyphs, the ImageNet ResNet-50 head for CUB."""
    if config.name == "glyphs":
        from ..models import ConvEmbedding

        return lambda dim: ConvEmbedding(dim, width=config.width)
    from ..models import resnet50_embedding

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


@contextlib.contextmanager
def cpu_threads(threads: int | None):
    """Use ``threads`` CPU threads in torch inside the block (None: leave torch's setting)."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if threads is not None:
            torch.set_num_threads(previous)


def plot_sweep(result: SweepResult, ax=None, reference: bool = True, title: str | None = None):
    """Recall@1 against the temperature on a log axis: each seed, the mean, and Table 1's row."""
    import matplotlib.pyplot as plt

    from ..plots import ROLE_COLORS

    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.5))
    temperatures = np.array(result.temperatures)
    values = 100 * result.values()
    for column in range(values.shape[1]):
        ax.plot(
            temperatures,
            values[:, column],
            "o",
            color=ROLE_COLORS["ours"],
            alpha=0.45,
            markersize=4,
            label="one seed" if column == 0 else None,
        )
    ax.errorbar(
        temperatures,
        result.mean_recall(),
        yerr=result.spread_recall(),
        color=ROLE_COLORS["ours"],
        marker="o",
        capsize=3,
        label=f"{result.setup}: mean $\\pm$ std over {values.shape[1]} seeds",
    )
    if reference:
        ax.plot(
            TABLE1_TEMPERATURES,
            TABLE1_RECALL_AT_1,
            "s--",
            color=ROLE_COLORS["paper"],
            label="survey Table 1 (CUB-200-2011)",
        )
    ax.set_xscale("log")
    ax.set_xlabel("temperature T (log scale)")
    ax.set_ylabel("Recall@1 on test classes (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title or "Recall@1 against the temperature of the normalised softmax", fontsize=10)
    ax.legend(fontsize=9)
    return ax


# Script -------------------------------------------------------------------------------------
def _positive_float(text: str) -> float:
    try:
        return check_positive("temperature", float(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dmlnotes-temperature-sweep",
        description="Recall@1 of the normalised softmax against its temperature (the survey's Table 1).",
    )
    parser.add_argument("--setup", choices=SETUPS, default="glyphs", help="glyphs (CPU, minutes) or cub (GPU, hours)")
    parser.add_argument(
        "--temperatures",
        type=_positive_float,
        nargs="+",
        default=list(TABLE1_TEMPERATURES),
        help="temperatures to train (default: Table 1's seven)",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="seeds per temperature (default: 0 1)")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results file, .json or .csv (default: data/temperature_sweep_<setup>.json)",
    )
    parser.add_argument(
        "--data-root", type=Path, default=None, help="the CUB_200_2011 folder (default: data/CUB_200_2011)"
    )
    parser.add_argument("--device", default=None, help="cuda, cuda:1, cpu, ... (default: the best available)")
    parser.add_argument("--steps", type=int, default=None, help="override the setup's number of steps (after warm-up)")
    parser.add_argument("--warmup-steps", type=int, default=None, help="override the setup's warm-up steps")
    parser.add_argument("--dim", type=int, default=None, help="override the embedding dimension (cub: 512 or 2048)")
    parser.add_argument("--image-size", type=int, default=None, help="override the side of the CUB crops (default 224)")
    parser.add_argument("--allow-cpu", action="store_true", help="let the cub setup run without a GPU (for tiny tests)")
    return parser


def main(argv: Sequence[str] | None = None, *, model_factory: Callable[[int], nn.Module] | None = None) -> int:
    """Run a sweep from the command line, print the table, write the results file.

    ``model_factory`` replaces the setup's network (tests use a tiny backbone)."""
    from ..data import DatasetNotFoundError

    parser = build_parser()
    args = parser.parse_args(argv)
    overrides = {
        name: value
        for name, value in (
            ("steps", args.steps),
            ("warmup_steps", args.warmup_steps),
            ("embedding_dim", args.dim),
            ("image_size", args.image_size),
        )
        if value is not None
    }
    out = args.out if args.out is not None else data_root() / f"temperature_sweep_{args.setup}.json"
    try:
        config = dataclasses.replace(CONFIGS[args.setup], **overrides)
        if out.suffix not in (".json", ".csv"):
            raise ValueError(f"--out must end in .json or .csv, got {out.name!r}")
        result = run_sweep(
            args.temperatures,
            args.seeds,
            config,
            root=args.data_root,
            model_factory=model_factory,
            device=args.device,
            allow_cpu=args.allow_cpu,
            verbose=True,
        )
    except (ValueError, DatasetNotFoundError, RuntimeError, ImportError) as error:
        parser.exit(1, f"{parser.prog}: error: {error}\n")
    print(result.format_table())
    with contextlib.suppress(ValueError):  # fewer than 3 of Table 1's temperatures: no correlation
        print(f"Spearman rank correlation with Table 1: {result.spearman_with_table1():.2f}")
    print(f"wrote {result.save(out)} ({result.seconds:.0f} s on {result.device})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
