"""One fixed setup in which every lesson's loss is trained and measured, so lessons compare.

A fair comparison fixes everything but the loss (Musgrave et al. 2020, "A Metric
Learning Reality Check"): the same network (:class:`~dmlnotes.models.ConvEmbedding`,
64-d, width 16), the same data (glyphs, train classes; Recall@1 and MAP@R on the unseen
test classes), the same number of steps and batch size (64 images), the same optimiser
(Adam) and seed. A :class:`Recipe` holds what may differ: the loss, the miner, the
batch layout (N-pair needs two images per class), the learning rate of the loss's own
parameters, and the metric used to retrieve (cosine for losses that normalise).

Each lesson calls :func:`compare` with its own loss and those of the earlier lessons.
A comparison is a claim over seeds: every recipe trains with :data:`SEEDS` (three
seeds), and each run is measured at :data:`STEPS` and at twice that length (the same
run, measured on the way), so a lesson shows whether its ranking still holds when
training is twice as long. :class:`Comparison` gives mean and spread, the rankings at
both lengths, where they differ, and :meth:`Comparison.assert_beats` for claims: "A beats
B" holds when the difference of the means exceeds the sum of the two standard deviations.

Runs are cached in ``results/comparison/`` (one JSON file per recipe and seed), so a lesson
does not retrain what an earlier lesson trained. The file name carries a fingerprint of
everything the result depends on: the recipe's loss and miner settings, the training
procedure's source, the package's loss/miner/model/data code, the data and the lengths.
A changed recipe or code gives a new fingerprint, so a stale result is never read; a
file that does not parse or does not match is recomputed and replaced.

The folder is committed, like the lessons' outputs: a fresh clone reads the runs the
lessons were executed with instead of training them again. ``make notebooks`` removes
the runs of older code (:func:`prune_stale_runs`) and trains what is missing; the tests
check that every committed run is for the current code and retrain one of them.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data import ClassBalancedBatchSampler, glyphs_split  # glyphs_split lived here: re-exported
from ..device import get_device, seed_everything
from ..distances import EuclideanDistance
from ..losses import (
    ArcFaceLoss,
    BinomialDevianceLoss,
    CenterLoss,
    CircleLoss,
    ContrastiveLoss,
    CosFaceLoss,
    CoupledClustersLoss,
    DeepClusteringLoss,
    FacilityLocationLoss,
    LiftedStructureLoss,
    MarginLoss,
    MultiSimilarityLoss,
    NCALoss,
    NormSoftmaxLoss,
    NPairLoss,
    ProxyAnchorLoss,
    ProxyNCALoss,
    RankedListLoss,
    TripletLoss,
)
from ..metrics import nmi, retrieval_metrics
from ..miners import BatchHardMiner, DistanceWeightedMiner, MultiSimilarityMiner, SemiHardNegativeMiner
from ..models import ConvEmbedding
from ..parallel import cpu_threads, run_jobs
from ..training import embed, fit

STEPS = 150  # the length a lesson reports; every run is also measured at twice it
SEEDS = (0, 1, 2)
EMBEDDING_DIM = 64
BATCH_SIZE = 64
WIDTH = 16


@dataclass(frozen=True)
class Recipe:
    """How one loss is trained in the shared setup.

    Attributes:
        name: the label in tables and plots.
        lesson: the notebook that teaches it (``"03"``).
        make_loss: ``(num_train_classes, embedding_dim) -> loss module``.
        make_miner: ``() -> miner`` or None.
        samples_per_class: K of the P x K batches (P = 64 / K).
        loss_lr: learning rate of the loss's parameters (proxies, class weights).
        metric: ``"euclidean"`` or ``"cosine"`` for retrieval.
    """

    name: str
    lesson: str
    make_loss: Callable[[int, int], nn.Module]
    make_miner: Callable[[], nn.Module] | None = None
    samples_per_class: int = 4
    loss_lr: float | None = None
    metric: str = "euclidean"


RECIPES: dict[str, Recipe] = {
    recipe.name: recipe
    for recipe in [
        Recipe("NCA", "00", lambda c, d: NCALoss()),
        Recipe("contrastive", "02", lambda c, d: ContrastiveLoss(margin=1.0)),
        Recipe("triplet (all)", "03", lambda c, d: TripletLoss(margin=0.2), metric="cosine"),
        Recipe(
            "triplet (semi-hard)",
            "03",
            lambda c, d: TripletLoss(margin=0.2),
            make_miner=lambda: SemiHardNegativeMiner(margin=0.2),
            metric="cosine",
        ),
        Recipe(
            "triplet (batch-hard)",
            "03",
            lambda c, d: TripletLoss(margin=0.2),
            make_miner=lambda: BatchHardMiner(),
            metric="cosine",
        ),
        # Hermans et al.'s own convention: plain distances on unnormalised embeddings.
        Recipe(
            "triplet (batch-hard, plain distance)",
            "03",
            lambda c, d: TripletLoss(margin=0.2, distance=EuclideanDistance(normalize_embeddings=False)),
            make_miner=lambda: BatchHardMiner(distance=EuclideanDistance(normalize_embeddings=False)),
        ),
        Recipe("lifted structure", "04", lambda c, d: LiftedStructureLoss(margin=1.0)),
        Recipe("lifted structure (hard)", "04", lambda c, d: LiftedStructureLoss(margin=1.0, form="hard")),
        Recipe("N-pair", "05", lambda c, d: NPairLoss(l2_reg=0.002, pairs="npair"), samples_per_class=2),
        Recipe("coupled clusters", "06", lambda c, d: CoupledClustersLoss(margin=1.0)),
        # Song et al. (2017): plain Euclidean on normalised embeddings, so retrieval by cosine; gamma = 1 our choice.
        Recipe("facility location", "08", lambda c, d: FacilityLocationLoss(gamma=1.0), metric="cosine"),
        # Survey 1.9: both normalise the embeddings (the papers' settings), so they retrieve by cosine.
        Recipe("ranked list", "10", lambda c, d: RankedListLoss(), metric="cosine"),
        Recipe("deep clustering", "10", lambda c, d: DeepClusteringLoss(), metric="cosine"),
        Recipe("proxy-NCA", "11", lambda c, d: ProxyNCALoss(c, d), loss_lr=1e-2, metric="cosine"),
        # Eq. (12)'s dynamic assignment: two proxies per class, each sample's positive the nearer of its class's.
        Recipe(
            "proxy-NCA (dynamic, 2 per class)",
            "09",
            lambda c, d: ProxyNCALoss(c, d, proxies_per_class=2),
            loss_lr=1e-2,
            metric="cosine",
        ),
        Recipe(
            "normalized softmax",
            "11",
            lambda c, d: NormSoftmaxLoss(c, d, temperature=0.05),
            loss_lr=1e-2,
            metric="cosine",
        ),
        # Lesson 07: the centre loss (eq. (7)) at the lambda that made the 2-D digits compact, and the
        # same softmax classifier without the centre term. Plain features and a squared Euclidean
        # centre term: retrieval by Euclidean distance, the distance the loss shapes.
        Recipe(
            "softmax (λ = 0)",
            "07",
            lambda c, d: CenterLoss(c, d, center_weight=0.0),
            loss_lr=1e-2,
        ),
        Recipe(
            "center loss",
            "07",
            lambda c, d: CenterLoss(c, d, center_weight=0.1),
            loss_lr=1e-2,
        ),
        # Lesson 14, the survey's chapter 3 carried out: the "normalized softmax" recipe above with a margin
        # on the target logit and nothing else changed (scale s = 1/T = 20, the same proxies' learning rate,
        # retrieval by cosine). CosFace's margin is in cosine units, ArcFace's in radians.
        Recipe(
            "CosFace, m = 0.1",
            "14",
            lambda c, d: CosFaceLoss(c, d, margin=0.1, scale=20.0),
            loss_lr=1e-2,
            metric="cosine",
        ),
        Recipe(
            "CosFace, m = 0.35",
            "14",
            lambda c, d: CosFaceLoss(c, d, margin=0.35, scale=20.0),
            loss_lr=1e-2,
            metric="cosine",
        ),
        Recipe(
            "ArcFace, m = 0.5",
            "14",
            lambda c, d: ArcFaceLoss(c, d, margin=0.5, scale=20.0),
            loss_lr=1e-2,
            metric="cosine",
        ),
        # Lesson 15, pair weighting; all on cosine similarities of normalised embeddings, so retrieval by cosine.
        # Multi-similarity with its miner at Wang et al.'s defaults (alpha 2, beta 50, lambda 0.5, epsilon 0.1).
        Recipe(
            "multi-similarity",
            "15",
            lambda c, d: MultiSimilarityLoss(alpha=2.0, beta=50.0, base=0.5),
            make_miner=lambda: MultiSimilarityMiner(epsilon=0.1),
            metric="cosine",
        ),
        # Circle loss at Sun et al.'s fine-grained retrieval setting (m = 0.4, gamma = 80).
        Recipe("circle", "15", lambda c, d: CircleLoss(margin=0.4, gamma=80.0), metric="cosine"),
        # Binomial deviance at the technical notes' values (alpha 2, beta 0.5, C 25).
        Recipe(
            "binomial deviance",
            "15",
            lambda c, d: BinomialDevianceLoss(alpha=2.0, beta=0.5, cost=25.0),
            metric="cosine",
        ),
        # Wu et al.'s margin loss (alpha 0.2, beta learned from 1.2) on the distance-weighted sampler's triplets;
        # beta at 10x the network's learning rate (our choice, as the proxies').
        Recipe(
            "margin (distance-weighted)",
            "15",
            lambda c, d: MarginLoss(margin=0.2, beta=1.2),
            make_miner=lambda: DistanceWeightedMiner(cutoff=0.5, nonzero_loss_cutoff=1.4),
            loss_lr=1e-2,
            metric="cosine",
        ),
        # Kim et al.'s proxy-anchor (alpha 32, delta 0.1); proxies at proxy-NCA's learning rate, 10x the network's.
        Recipe(
            "proxy-anchor",
            "15",
            lambda c, d: ProxyAnchorLoss(c, d, alpha=32.0, margin=0.1),
            loss_lr=1e-2,
            metric="cosine",
        ),
    ]
}


@dataclass
class ComparisonResult:
    """One run's outcome after ``steps`` steps: retrieval on the test classes, time, loss."""

    name: str
    lesson: str
    seed: int
    steps: int
    recall_at_1: float
    map_at_r: float
    seconds: float
    final_loss: float
    nmi: float | None = None  # k-means NMI on the test classes: runs of ``compare(..., with_nmi=True)`` only


def _resolve(recipe: Recipe | str) -> Recipe:
    if isinstance(recipe, Recipe):
        return recipe
    try:
        return RECIPES[recipe]
    except KeyError:
        raise ValueError(f"unknown recipe {recipe!r}; expected a Recipe or one of {sorted(RECIPES)}") from None


def _train(
    recipe: Recipe,
    seed: int,
    lengths: Sequence[int],
    device,
    train_set,
    test_set,
    embedding_dim: int,
    with_nmi: bool = False,
):
    """Train once for ``max(lengths)`` steps, measuring the test classes after each length
    (``with_nmi``: also k-means NMI, with as many clusters as test classes; k-means draws from
    its own seeded generator, so the run is the same with or without it)."""
    seed_everything(seed)
    model = ConvEmbedding(embedding_dim, width=WIDTH)
    loss_fn = recipe.make_loss(train_set.num_classes, embedding_dim)
    miner = recipe.make_miner() if recipe.make_miner else None
    sampler = ClassBalancedBatchSampler(
        train_set.labels, BATCH_SIZE // recipe.samples_per_class, recipe.samples_per_class, seed=seed
    )
    results: list[ComparisonResult] = []
    start = time.perf_counter()

    def measure(step: int, history) -> None:
        if step in lengths:
            embeddings = embed(model, test_set.inputs, device=device)  # eval mode, no randomness drawn
            scores = retrieval_metrics(embeddings, test_set.labels, ks=1, metric=recipe.metric, with_nmi=False)
            results.append(
                ComparisonResult(
                    name=recipe.name,
                    lesson=recipe.lesson,
                    seed=seed,
                    steps=step,
                    recall_at_1=scores["R@1"],
                    map_at_r=scores["MAP@R"],
                    seconds=time.perf_counter() - start,
                    final_loss=float(np.mean(history.losses[-10:])),
                )
            )
            if with_nmi:
                clustered = embeddings if recipe.metric == "euclidean" else F.normalize(embeddings, dim=1)
                results[-1].nmi = nmi(clustered, test_set.labels, seed=seed)

    fit(
        model,
        loss_fn,
        train_set,
        miner=miner,
        batch_sampler=sampler,
        steps=max(lengths),
        lr=1e-3,
        loss_lr=recipe.loss_lr,
        device=device,
        progress=False,
        callbacks=[measure],
    )
    return results


def _check_lengths(lengths) -> tuple[int, ...]:
    lengths = tuple(sorted({int(n) for n in lengths}))
    if not lengths or lengths[0] < 1:
        raise ValueError(f"training lengths must be positive step counts, got {lengths}")
    return lengths


def train_and_evaluate(
    recipe: Recipe | str,
    steps: int = STEPS,
    seed: int = 0,
    device=None,
    train_set=None,
    test_set=None,
    embedding_dim: int = EMBEDDING_DIM,
) -> ComparisonResult:
    """Train a fresh network with ``recipe`` in the shared setup for ``steps`` steps and measure it
    (one seed, not cached: for exercises; lessons compare with :func:`compare`)."""
    if train_set is None or test_set is None:
        train_set, test_set = glyphs_split()
    return _train_single_threaded(
        _resolve(recipe), seed, _check_lengths([steps]), get_device(device), train_set, test_set, embedding_dim
    )[0]


# --- the cache ---------------------------------------------------------------------------

CACHE_ENV_VAR = "DMLNOTES_COMPARISON_CACHE"  # "0" turns the cache off; a folder moves it there
_PACKAGE = Path(__file__).resolve().parents[1]
# Code a result depends on; plots, notebooks and the runner do not change a result.
_CODE_FILES = (
    "losses",
    "miners",
    "data",
    "training.py",
    "models.py",
    "distances.py",
    "indices.py",
    "checks.py",
    "metrics.py",
    "device.py",
)


COMMITTED_RUNS = _PACKAGE.parent / "results" / "comparison"


def cache_dir() -> Path:
    """``results/comparison/`` in the repository (committed), or the folder
    ``$DMLNOTES_COMPARISON_CACHE`` names (``make bench COLD=1`` points it at an empty folder
    to time the lessons as on a new machine); ``data/comparison/`` for a package installed
    without the repository."""
    from ..data.paths import data_root

    configured = os.environ.get(CACHE_ENV_VAR, "")
    if configured not in ("", "0", "1"):
        return Path(configured).expanduser()
    return COMMITTED_RUNS if COMMITTED_RUNS.parent.is_dir() else data_root() / "comparison"


@functools.lru_cache(maxsize=1)
def _code_fingerprint() -> str:
    digest = hashlib.sha256(inspect.getsource(_train).encode() + inspect.getsource(_train_single_threaded).encode())
    for name in _CODE_FILES:
        path = _PACKAGE / name
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(file.relative_to(_PACKAGE).as_posix().encode())
            digest.update(file.read_bytes())
    digest.update(torch.__version__.encode())
    return digest.hexdigest()


def _settings(obj, depth: int = 0):
    """The plain settings of a loss or miner (margin, temperature, distance...), for the fingerprint."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, (tuple, list)):
        return [_settings(item, depth + 1) for item in obj]
    if isinstance(obj, torch.Tensor):
        return list(obj.shape)
    described = {"class": f"{type(obj).__module__}.{type(obj).__qualname__}"}
    if depth < 3:
        for key, value in sorted(vars(obj).items()):
            if key.startswith("_") and isinstance(getattr(type(obj), key[1:], None), property):
                described[key[1:]] = _settings(value, depth + 1)  # a checked setting: _margin behind .margin
                continue
            if key.startswith("_") and key not in ("_parameters", "_buffers", "_modules"):
                continue
            if key in ("_parameters", "_buffers", "_modules"):  # _modules: a distance is a submodule
                described[key] = {k: _settings(v, depth + 1) for k, v in value.items()}
            elif key not in ("training", "last_stats"):
                described[key] = _settings(value, depth + 1)
    return described


def _data_fingerprint(dataset) -> str:
    digest = hashlib.sha256()
    for tensor in (dataset.inputs, dataset.labels):
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _run_key(recipe: Recipe, seed, lengths, train_set, test_set, embedding_dim, with_nmi: bool = False) -> dict:
    key = {
        "recipe": {
            "name": recipe.name,
            "lesson": recipe.lesson,
            "samples_per_class": recipe.samples_per_class,
            "loss_lr": recipe.loss_lr,
            "metric": recipe.metric,
            "loss": _settings(recipe.make_loss(train_set.num_classes, embedding_dim)),
            "miner": _settings(recipe.make_miner() if recipe.make_miner else None),
        },
        "seed": seed,
        "lengths": list(lengths),
        "setup": {"embedding_dim": embedding_dim, "batch_size": BATCH_SIZE, "width": WIDTH},
        "train_data": _data_fingerprint(train_set),
        "test_data": _data_fingerprint(test_set),
        "code": _code_fingerprint(),
    }
    if with_nmi:  # runs scored by NMI too are cached apart (and cost about a second more per measurement)
        key["metrics"] = _NMI_METRICS
    return key


_NMI_METRICS = ["R@1", "MAP@R", "NMI"]


def _cache_path(directory: Path, key: dict) -> Path:
    slug = re.sub(r"[^a-z0-9]+", "-", key["recipe"]["name"].lower()).strip("-") + ("-nmi" if "metrics" in key else "")
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return directory / f"{slug}-seed{key['seed']}-{digest}.json"


def _read_cached(path: Path, key: dict) -> list[ComparisonResult] | None:
    """The cached runs, or None when the file is missing, unreadable or not for this key."""
    try:
        stored = json.loads(path.read_text())
        if stored["key"] != key:
            return None
        results = [ComparisonResult(**fields) for fields in stored["results"]]
        if sorted(r.steps for r in results) != key["lengths"]:
            return None
        return results
    except (OSError, ValueError, KeyError, TypeError):
        return None


def trained_on() -> dict:
    """Where a run was trained. Single-threaded CPU runs repeat bit for bit on a CPU with the
    same vector instructions (torch's CPU capability); on another, the sums round differently."""
    return {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def _write_cached(path: Path, key: dict, results: list[ComparisonResult]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    stored = [{k: v for k, v in dataclasses.asdict(r).items() if k != "nmi" or v is not None} for r in results]
    text = json.dumps({"key": key, "trained_on": trained_on(), "results": stored}, indent=1)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as tmp:
        tmp.write(text)
    os.chmod(tmp.name, 0o644)  # a committed file, readable like the others (not the temp file's 0600)
    os.replace(tmp.name, path)  # atomic: a reader never sees half a file


def stale_runs(directory: Path | None = None) -> list[Path]:
    """The cached runs in ``directory`` (default: :func:`cache_dir`) that no lookup can read
    any more: trained by other code or another torch, or unreadable."""
    stale = []
    for path in sorted((directory or cache_dir()).glob("*.json")):
        try:
            current = json.loads(path.read_text())["key"]["code"] == _code_fingerprint()
        except (OSError, ValueError, KeyError, TypeError):
            current = False
        if not current:
            stale.append(path)
    return stale


def prune_stale_runs(directory: Path | None = None) -> list[Path]:
    """Remove :func:`stale_runs`; the removed paths."""
    removed = stale_runs(directory)
    for path in removed:
        path.unlink()
    return removed


def _cache_entry(recipe: Recipe, seed, lengths, train_set, test_set, embedding_dim, with_nmi: bool = False):
    """``(path, key, cached runs or None)`` for one run, with the cache on. A run asked for
    without NMI is also read from the same run scored by NMI as well (its NMI left out),
    so a lesson that needs both trains the run once."""
    key = _run_key(recipe, seed, lengths, train_set, test_set, embedding_dim, with_nmi)
    path = _cache_path(cache_dir(), key)
    cached = _read_cached(path, key)
    if cached is None and not with_nmi:
        scored_key = {**key, "metrics": _NMI_METRICS}
        scored = _read_cached(_cache_path(cache_dir(), scored_key), scored_key)
        cached = None if scored is None else [dataclasses.replace(run, nmi=None) for run in scored]
    return path, key, cached


def _runs(
    recipes: Sequence[Recipe],
    seeds: Sequence[int],
    lengths,
    device,
    train_set,
    test_set,
    embedding_dim,
    cache: bool | None,
    with_nmi: bool = False,
) -> list[list[ComparisonResult]]:
    """Every (recipe, seed) run, recipe by recipe: read from the cache where it is there, else
    trained and stored.

    The runs still to train go side by side, one single-threaded process per CPU core
    (:func:`dmlnotes.parallel.run_jobs`; on a GPU one after another, here). They are
    single-threaded here too: a network in channels-last layout adds up in a
    thread-dependent order, so one thread everywhere gives the same run whatever the
    number of processes."""
    lengths = _check_lengths(lengths)
    if train_set is None or test_set is None:
        train_set, test_set = glyphs_split()
    device = get_device(device)
    use_cache = os.environ.get(CACHE_ENV_VAR, "1") != "0" if cache is None else cache
    runs: dict[tuple[int, int], list[ComparisonResult]] = {}
    to_train = []  # (recipe position, seed, cache path, cache key)
    for position, recipe in enumerate(recipes):
        for seed in seeds:
            path = key = None
            if use_cache:
                path, key, cached = _cache_entry(recipe, seed, lengths, train_set, test_set, embedding_dim, with_nmi)
                if cached is not None:
                    runs[position, seed] = cached
                    continue
            to_train.append((position, seed, path, key))
    jobs = [
        (recipes[position], seed, lengths, device, train_set, test_set, embedding_dim, with_nmi)
        for position, seed, *_ in to_train
    ]
    for (position, seed, path, key), results in zip(to_train, run_jobs(_train_single_threaded, jobs, device=device)):
        if use_cache:
            _write_cached(path, key, results)
        runs[position, seed] = results
    return [runs[position, seed] for position in range(len(recipes)) for seed in seeds]


def _train_single_threaded(*args) -> list[ComparisonResult]:
    with cpu_threads(1):
        return _train(*args)


def run_recipe(
    recipe: Recipe | str,
    seed: int = 0,
    lengths: Sequence[int] = (STEPS, 2 * STEPS),
    device=None,
    train_set=None,
    test_set=None,
    embedding_dim: int = EMBEDDING_DIM,
    cache: bool | None = None,
) -> list[ComparisonResult]:
    """One seed of one recipe, measured after each of ``lengths`` steps; read from the cache
    when an identical run is there, else trained and stored (``cache=False``, or
    ``DMLNOTES_COMPARISON_CACHE=0``, always trains and stores nothing)."""
    return _runs([_resolve(recipe)], [seed], lengths, device, train_set, test_set, embedding_dim, cache)[0]


# --- comparisons over seeds --------------------------------------------------------------

METRICS = {"recall_at_1": "R@1", "map_at_r": "MAP@R", "nmi": "NMI"}


def spread(values) -> float:
    """Standard deviation over seeds (n - 1 in the denominator; 0 for a single value)."""
    values = np.atleast_1d(np.asarray(values, dtype=float))
    return float(values.std(ddof=1)) if values.size > 1 else 0.0


def mean_std(values) -> str:
    """Fractions over seeds as ``"72.9 ± 0.7 %"``; a single (deterministic) value as ``"55.5 %"``."""
    values = np.atleast_1d(np.asarray(values, dtype=float))
    if values.size == 1:
        return f"{100 * values[0]:.1f} %"
    return f"{100 * values.mean():.1f} ± {100 * spread(values):.1f} %"


@dataclass
class Comparison:
    """Runs of several recipes over seeds, each measured at several training lengths."""

    results: list[ComparisonResult]
    names: list[str]
    lengths: tuple[int, ...]

    def values(self, name: str, steps: int | None = None, metric: str = "recall_at_1") -> np.ndarray:
        """Per-seed values of one recipe at one length (default: the first, the reported one)."""
        steps = self.lengths[0] if steps is None else steps
        if name not in self.names:
            raise ValueError(f"no recipe {name!r} in this comparison; it has {self.names}")
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {sorted(METRICS)}, got {metric!r}")
        values = [getattr(r, metric) for r in self.results if r.name == name and r.steps == steps]
        if not values:
            raise ValueError(f"no runs of {name!r} at {steps} steps; lengths are {self.lengths}")
        if any(value is None for value in values):
            raise ValueError(f"the runs of {name!r} were not scored by {METRICS[metric]}: compare(..., with_nmi=True)")
        return np.array(values)

    @property
    def metrics(self) -> list[str]:
        """The metrics every run was scored by (NMI only in ``compare(..., with_nmi=True)``)."""
        return [m for m in METRICS if all(getattr(r, m) is not None for r in self.results)]

    def mean(self, name: str, steps: int | None = None, metric: str = "recall_at_1") -> float:
        return float(self.values(name, steps, metric).mean())

    def std(self, name: str, steps: int | None = None, metric: str = "recall_at_1") -> float:
        """Standard deviation over seeds (n - 1 in the denominator; 0 for a single seed)."""
        return spread(self.values(name, steps, metric))

    def mean_std(self, name: str, steps: int | None = None, metric: str = "recall_at_1") -> str:
        """``"79.1 ± 2.0 %"``: mean and standard deviation over seeds, for prose rendered from the results."""
        return mean_std(self.values(name, steps, metric))

    @property
    def seeds(self) -> list[int]:
        return sorted({r.seed for r in self.results})

    def ranking(self, steps: int | None = None, metric: str = "recall_at_1") -> list[str]:
        """Recipe names from best to worst mean."""
        return sorted(self.names, key=lambda name: -self.mean(name, steps, metric))

    def margin(self, a: str, b: str, steps: int | None = None, metric: str = "recall_at_1") -> float:
        """How far mean(a) - mean(b) exceeds the spread std(a) + std(b); positive means "a beats b"."""
        return (self.mean(a, steps, metric) - self.mean(b, steps, metric)) - (
            self.std(a, steps, metric) + self.std(b, steps, metric)
        )

    def beats(self, a: str, b: str, steps: int | None = None, metric: str = "recall_at_1") -> bool:
        """Whether a's mean exceeds b's by more than the sum of their standard deviations."""
        return self.margin(a, b, steps, metric) > 0

    def verdict(self, a: str, b: str, steps: int | None = None, metric: str = "recall_at_1") -> str:
        """``"ahead"``, ``"behind"`` or ``"within the spread"``: where a stands against b."""
        if self.beats(a, b, steps, metric):
            return "ahead"
        if self.beats(b, a, steps, metric):
            return "behind"
        return "within the spread"

    def gap(self, a: str, b: str, steps: int | None = None, metric: str = "recall_at_1") -> str:
        """``"6.2 points (spread 3.0)"``: mean(a) - mean(b) and std(a) + std(b), in points."""
        difference = 100 * (self.mean(a, steps, metric) - self.mean(b, steps, metric))
        return f"{difference:.1f} points (spread {100 * (self.std(a, steps, metric) + self.std(b, steps, metric)):.1f})"

    def assert_beats(
        self, a: str, b: str, steps: int | Sequence[int] | None = None, metric: str = "recall_at_1"
    ) -> None:
        """Assert "a beats b" at one length, several, or (``steps=None``) every measured length."""
        for length in self.lengths if steps is None else np.atleast_1d(steps).tolist():
            if not self.beats(a, b, length, metric):
                raise AssertionError(
                    f"{a} does not beat {b} at {length} steps on {METRICS[metric]}: means "
                    f"{100 * self.mean(a, length, metric):.1f} vs {100 * self.mean(b, length, metric):.1f} %, "
                    f"spreads {100 * self.std(a, length, metric):.1f} and {100 * self.std(b, length, metric):.1f}"
                )

    def rank_changes(self, metric: str = "recall_at_1") -> list[tuple[str, str]]:
        """Pairs (a, b) with a ahead of b at the first length and behind it at the last."""
        first, last = self.ranking(self.lengths[0], metric), self.ranking(self.lengths[-1], metric)
        return [(a, b) for i, a in enumerate(first) for b in first[i + 1 :] if last.index(a) > last.index(b)]

    def table(self) -> str:
        """Plain text: lesson, recipe, then R@1, MAP@R (and NMI) as mean ± std (%) at each length."""
        width = max(len(name) for name in self.names)
        columns = [(metric, steps) for metric in self.metrics for steps in self.lengths]
        header = f"{'lesson':<6}  {'loss':<{width}}" + "".join(f"  {f'{METRICS[m]} {s} steps':>16}" for m, s in columns)
        lines = [f"mean ± standard deviation over seeds {self.seeds}, in %", header]
        for name in self.names:
            lesson = next(r.lesson for r in self.results if r.name == name)
            cells = "".join(
                f"  {f'{100 * self.mean(name, s, m):.1f} ± {100 * self.std(name, s, m):.1f}':>16}" for m, s in columns
            )
            lines.append(f"{lesson:<6}  {name:<{width}}{cells}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def ranking_report(self, metric: str = "recall_at_1") -> str:
        """Markdown: the ranking at each length and the pairs whose order changes."""
        lines = [
            f"- after {steps} steps: "
            + " > ".join(f"{name} ({100 * self.mean(name, steps, metric):.1f})" for name in self.ranking(steps, metric))
            for steps in self.lengths
        ]
        changes = self.rank_changes(metric)
        if changes:
            lines.append(
                f"- the order changes between {self.lengths[0]} and {self.lengths[-1]} steps for: "
                + "; ".join(f"{a} and {b}" for a, b in changes)
            )
        else:
            lines.append(
                f"- the ranking by mean {METRICS[metric]} is the same at {self.lengths[0]} and {self.lengths[-1]} steps"
            )
        return "\n".join(lines)

    def plot(
        self,
        highlight: str | Sequence[str] | None = None,
        metric: str = "recall_at_1",
        ax=None,
        title: str = "Only the loss changes",
    ):
        """Horizontal bars of the mean at each length, one dot per seed; ``highlight``: this lesson's recipes;
        ``title``: what the runs share or vary (the seeds and lengths are added to it)."""
        from ..plots import ROLE_COLORS

        highlighted = {highlight} if isinstance(highlight, str) else set(highlight or ())
        if ax is None:
            _, ax = plt.subplots(figsize=(7.5, 0.6 * len(self.names) + 1.4))
        height = 0.8 / len(self.lengths)
        for index, steps in enumerate(self.lengths):
            offset = (index - (len(self.lengths) - 1) / 2) * height
            for y, name in enumerate(self.names):
                color = ROLE_COLORS["highlight" if name in highlighted else "other"]
                ax.barh(
                    y + offset,
                    100 * self.mean(name, steps, metric),
                    height=height * 0.9,
                    color=color,
                    alpha=1.0 if index == len(self.lengths) - 1 else 0.55,
                    xerr=100 * self.std(name, steps, metric),
                    error_kw={"elinewidth": 1, "capsize": 2},
                )
                ax.plot(
                    100 * self.values(name, steps, metric), np.full(len(self.seeds), y + offset), "k.", markersize=4
                )
        ax.set_yticks(range(len(self.names)))
        lessons = {r.name: r.lesson for r in self.results}
        ax.set_yticklabels([f"{lessons[n]} {n}" for n in self.names], fontsize=10)
        ax.invert_yaxis()
        ax.set_xlabel(f"{METRICS[metric]} on glyphs test classes (%)", fontsize=10)
        ax.set_xlim(0, 100)
        shades = " / ".join(
            f"{'dark' if i == len(self.lengths) - 1 else 'light'}: {s} steps" for i, s in enumerate(self.lengths)
        )
        ax.set_title(f"{title}; mean ± std over seeds {self.seeds}, dots: seeds ({shades})", fontsize=10)
        return ax


def compare(
    recipes: Sequence[Recipe | str],
    seeds: Sequence[int] = SEEDS,
    lengths: Sequence[int] = (STEPS, 2 * STEPS),
    device=None,
    cache: bool | None = None,
    train_set=None,
    test_set=None,
    embedding_dim: int = EMBEDDING_DIM,
    with_nmi: bool = False,
) -> Comparison:
    """Train (or read from the cache) each recipe with each seed, measured at each length.

    ``with_nmi=True`` also scores every run by NMI (k-means on the test classes, about a
    second per measurement): the same runs, trained and cached apart from those without it."""
    recipes = [_resolve(recipe) for recipe in recipes]
    names = [recipe.name for recipe in recipes]
    if len(set(names)) != len(names):
        raise ValueError(f"recipe names must be distinct, got {names}")
    if not seeds:
        raise ValueError("give at least one seed")
    runs = _runs(recipes, list(seeds), lengths, device, train_set, test_set, embedding_dim, cache, with_nmi)
    return Comparison([result for results in runs for result in results], names, _check_lengths(lengths))


__all__ = [
    "Recipe",
    "RECIPES",
    "STEPS",
    "SEEDS",
    "ComparisonResult",
    "Comparison",
    "spread",
    "mean_std",
    "glyphs_split",
    "train_and_evaluate",
    "run_recipe",
    "compare",
    "cache_dir",
]
