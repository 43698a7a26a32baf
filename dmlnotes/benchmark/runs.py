"""The benchmark's runs: which to train (search, then final), training one, and spreading them.

A run is a :class:`Task`: one recipe with one setting and one seed, trained once and
measured at each of its lengths. Search tasks train on three quarters of the training
classes and are measured on the held-out quarter (validation classes); final tasks train
on all training classes with the chosen setting and are measured on the test classes.
Every task is independent, so a list of tasks can be cut into shards (``--shard K/N``)
for a job array on a cluster, or spread over processes on one machine (``--jobs``).

A run that raises, or whose loss or embeddings become NaN, is recorded with its status
(``"failed"`` or ``"nan"``) and the error, never dropped.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import math
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..data import ClassBalancedBatchSampler, class_disjoint_split
from ..device import get_device, seed_everything
from ..metrics import retrieval_metrics
from ..parallel import cpu_threads, run_jobs
from ..training import embed, fit
from .recipes import RECIPES, BenchmarkRecipe
from .setups import BenchmarkSetup

KS = (1, 2, 4, 8)
METRICS = ("R@1", "R@2", "R@4", "R@8", "NMI", "MAP@R")
PHASES = ("search", "final")


@dataclass(frozen=True)
class Task:
    """One training run: ``recipe`` with ``overrides`` (a grid entry or the chosen setting), one seed."""

    phase: str
    recipe: str
    overrides: tuple[tuple[str, object], ...]
    seed: int
    lengths: tuple[int, ...]

    @property
    def key(self) -> tuple:
        return (self.phase, self.recipe, self.overrides, self.seed)


def _as_items(overrides: Mapping) -> tuple[tuple[str, object], ...]:
    return tuple(sorted(dict(overrides).items()))


def search_tasks(setup: BenchmarkSetup, recipes: Sequence[BenchmarkRecipe]) -> list[Task]:
    """Every grid entry of every recipe with each search seed, at the search length."""
    return [
        Task("search", recipe.name, _as_items(entry), seed, (setup.search_steps,))
        for recipe in recipes
        for entry in recipe.grid
        for seed in setup.search_seeds
    ]


def final_tasks(setup: BenchmarkSetup, recipes: Sequence[BenchmarkRecipe], chosen: Mapping[str, Mapping]) -> list[Task]:
    """The chosen setting of every recipe with each seed, measured at every length."""
    missing = [recipe.name for recipe in recipes if recipe.name not in chosen]
    if missing:
        raise ValueError(f"no chosen setting for {missing}: run the search first (or pass its results file)")
    return [
        Task("final", recipe.name, _as_items(chosen[recipe.name]), seed, setup.lengths)
        for recipe in recipes
        for seed in setup.seeds
    ]


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` -> ``(2, 4)``: the second of four parts."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"a shard is K/N with whole numbers, e.g. 2/4, got {text!r}") from None
    if not 1 <= index <= count:
        raise ValueError(f"shard K/N needs 1 <= K <= N, got {text!r}")
    return index, count


def shard(tasks: Sequence[Task], index: int, count: int) -> list[Task]:
    """The ``index``-th of ``count`` parts (1-based), dealt round-robin so each part mixes recipes."""
    return [task for position, task in enumerate(tasks) if position % count == index - 1]


def choose_settings(records: Sequence[Mapping], recipes: Sequence[BenchmarkRecipe], metric: str = "MAP@R") -> dict:
    """Per recipe, the grid entry with the best mean validation ``metric`` over the search seeds.

    Runs that failed or went NaN count as the worst score; a recipe whose every search run
    failed keeps its defaults. Ties go to the earlier grid entry.
    """
    chosen = {}
    for recipe in recipes:
        best, best_score = {}, -math.inf
        for entry in recipe.grid:
            scores = [
                record["metrics"][metric] if record["status"] == "ok" else -math.inf
                for record in records
                if record["phase"] == "search"
                and record["recipe"] == recipe.name
                and record["overrides"] == dict(entry)
            ]
            score = float(np.mean(scores)) if scores else -math.inf
            if score > best_score:
                best, best_score = dict(entry), score
        chosen[recipe.name] = best
    return chosen


@functools.lru_cache(maxsize=4)
def _datasets(setup: BenchmarkSetup, root):
    train_set, test_set = setup.load(root)
    fit_part, validation = class_disjoint_split(train_set, 1.0 - setup.validation_fraction)
    return {"search": (fit_part, validation), "final": (train_set, test_set)}


def environment(device) -> dict:
    """Versions and hardware a result depends on, recorded with every run."""
    from .. import __version__

    return {
        "dmlnotes": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": str(device),
        "threads": torch.get_num_threads(),
    }


def run_task(
    task: Task,
    setup: BenchmarkSetup,
    root=None,
    device=None,
    recipes: Mapping[str, BenchmarkRecipe] = RECIPES,
    datasets: Mapping[str, tuple] | None = None,
) -> list[dict]:
    """Train ``task`` and measure it at each of its lengths: one record per length.

    A run that stops early (an exception, a NaN loss) leaves records with ``status``
    ``"failed"`` or ``"nan"`` and the error for the lengths it did not reach.
    ``recipes`` and ``datasets`` (``{"search": (train, validation), "final": (train, test)}``)
    default to the benchmark's own; tests pass small ones.
    """
    if task.phase not in PHASES:
        raise ValueError(f"phase must be one of {PHASES}, got {task.phase!r}")
    recipe = recipes[task.recipe]
    device = get_device(device)
    train_set, eval_set = (datasets or _datasets(setup, root))[task.phase]
    base = {
        "setup": setup.name,
        "setup_config": dataclasses.asdict(setup),
        "phase": task.phase,
        "recipe": task.recipe,
        "overrides": dict(task.overrides),
        "settings": recipe.settings(dict(task.overrides)),
        "seed": task.seed,
        "evaluated_on": "validation classes" if task.phase == "search" else "test classes",
        "started_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "environment": environment(device),
    }
    records: list[dict] = []
    clock = {"training": 0.0, "since": time.perf_counter()}

    def measure(step: int, history) -> None:
        if step not in task.lengths:
            return
        clock["training"] += time.perf_counter() - clock["since"]
        embeddings = embed(model, eval_set, batch_size=setup.eval_batch_size, device=device)
        record = {**base, "steps": step, "seconds": clock["training"], "seconds_per_step": clock["training"] / step}
        record["final_loss"] = float(np.mean(history.losses[-10:]))
        if not torch.isfinite(embeddings).all():
            record.update(status="nan", error="the embeddings of the evaluation images are not finite", metrics=None)
        else:
            scores = retrieval_metrics(embeddings, eval_set.labels, ks=KS, metric=recipe.metric)
            record.update(status="ok", error=None, metrics={name: float(scores[name]) for name in METRICS})
        records.append(record)
        clock["since"] = time.perf_counter()

    try:
        seed_everything(task.seed)
        model = setup.make_model()
        loss_fn, miner = recipe.build(train_set.num_classes, setup.embedding_dim, dict(task.overrides))
        per_class = recipe.samples_per_class
        sampler = ClassBalancedBatchSampler(train_set.labels, setup.batch_size // per_class, per_class, seed=task.seed)
        steps = max(task.lengths)
        callbacks = [measure] + (recipe.make_callbacks(loss_fn, steps) if recipe.make_callbacks else [])
        fit(
            model,
            loss_fn,
            train_set,
            miner=miner,
            batch_sampler=sampler,
            steps=steps,
            lr=setup.lr,
            loss_lr=recipe.loss_lr,
            weight_decay=setup.weight_decay,
            device=device,
            progress=False,
            callbacks=callbacks,
        )
    except Exception as error:  # recorded, not raised: one broken loss must not end a benchmark
        status = "nan" if isinstance(error, FloatingPointError) else "failed"
        reached = {record["steps"] for record in records}
        for steps in task.lengths:
            if steps not in reached:
                records.append(
                    {
                        **base,
                        "steps": steps,
                        "status": status,
                        "error": f"{type(error).__name__}: {error}",
                        "metrics": None,
                        "seconds": None,
                        "seconds_per_step": None,
                        "final_loss": None,
                    }
                )
    return records


def _run_task_for_pool(task: Task, setup: BenchmarkSetup, root, device) -> list[dict]:
    with cpu_threads(1):  # as in a worker process, so a run does not depend on --jobs
        return run_task(task, setup, root, device)


def run_tasks(tasks: Sequence[Task], setup: BenchmarkSetup, jobs: int = 1, root=None, device=None) -> list[dict]:
    """Every task's records, in task order; ``jobs`` processes side by side (one thread each)."""
    outcomes = run_jobs(_run_task_for_pool, [(task, setup, root, device) for task in tasks], workers=jobs)
    return [record for records in outcomes for record in records]
