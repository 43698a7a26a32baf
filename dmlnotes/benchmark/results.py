"""The benchmark's results file: reading, writing, merging, and the summary over seeds.

One JSON file holds every run's record (its setup, recipe, settings, seed, length, status,
metrics, time and environment). Shards write their own files; :func:`merge` combines them,
a later record of the same run replacing an earlier one. :func:`summarize` turns the final
runs into one row per recipe and length: mean, standard deviation and a 95 % interval of
each metric over the seeds, with the failed runs counted.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from scipy import stats

from .runs import METRICS

FORMAT = "dmlnotes-benchmark/1"

# The committed results lesson 16 reads; located from the package, so a copy of the lesson elsewhere finds it.
PUBLISHED_RESULTS = Path(__file__).resolve().parents[2] / "results" / "benchmark-glyphs.json"


def _run_id(record: Mapping) -> tuple:
    return (
        record["setup"],
        record["phase"],
        record["recipe"],
        json.dumps(record["overrides"], sort_keys=True),
        record["seed"],
        record["steps"],
    )


def read_results(path: str | os.PathLike) -> list[dict]:
    """The records of a results file; an unknown format is an error that names the file."""
    path = Path(path)
    try:
        stored = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"no benchmark results at {path}: run python -m dmlnotes.benchmark run first") from None
    if not isinstance(stored, dict) or stored.get("format") != FORMAT:
        raise ValueError(f"{path} is not a dmlnotes benchmark results file (format {FORMAT!r})")
    return list(stored["runs"])


def write_results(path: str | os.PathLike, records: Iterable[Mapping]) -> Path:
    """Write ``records`` atomically (a reader never sees half a file); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"format": FORMAT, "runs": list(records)}, indent=1)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as tmp:
        tmp.write(text)
    os.replace(tmp.name, path)
    return path


def merge(*record_lists: Iterable[Mapping]) -> list[dict]:
    """One list of records; of two records of the same run, the later argument's wins."""
    merged: dict[tuple, dict] = {}
    for records in record_lists:
        for record in records:
            merged[_run_id(record)] = dict(record)
    return list(merged.values())


def interval95(values: Sequence[float]) -> tuple[float, float]:
    """Student's t 95 % interval of the mean (``nan`` with fewer than two values)."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return (math.nan, math.nan)
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return (float(values.mean() - half), float(values.mean() + half))


def summarize(records: Iterable[Mapping], phase: str = "final") -> list[dict]:
    """One row per (recipe, steps) of ``phase``: runs, failures, and per metric mean/std/interval.

    Rows keep the recipes' first-seen order and are sorted by steps within a recipe.
    """
    groups: dict[tuple, list[Mapping]] = {}
    for record in records:
        if record["phase"] == phase:
            groups.setdefault((record["recipe"], record["steps"]), []).append(record)
    first_seen: dict[str, int] = {}
    for recipe, _ in groups:
        first_seen.setdefault(recipe, len(first_seen))
    rows = []
    for recipe, steps in sorted(groups, key=lambda group: (first_seen[group[0]], group[1])):
        runs = groups[(recipe, steps)]
        ok = [run for run in runs if run["status"] == "ok"]
        row = {
            "recipe": recipe,
            "steps": steps,
            "settings": runs[0]["settings"],
            "runs": len(runs),
            "failed": len(runs) - len(ok),
            "seconds_per_step": float(np.mean([run["seconds_per_step"] for run in ok])) if ok else math.nan,
        }
        for metric in METRICS:
            values = [run["metrics"][metric] for run in ok]
            row[metric] = {
                "mean": float(np.mean(values)) if values else math.nan,
                "std": float(np.std(values, ddof=1)) if len(values) > 1 else math.nan,
                "interval95": interval95(values),
                "values": values,
            }
        rows.append(row)
    return rows


def _cell(summary: Mapping) -> str:
    low, high = summary["interval95"]
    return f"{100 * summary['mean']:5.1f} [{100 * low:5.1f}, {100 * high:5.1f}]"


def format_table(rows: Sequence[Mapping], steps: int, sort_by: str = "MAP@R") -> str:
    """A plain-text table of the rows at ``steps``, best ``sort_by`` first (in percent)."""
    chosen = [row for row in rows if row["steps"] == steps]
    chosen.sort(key=lambda row: -np.nan_to_num(row[sort_by]["mean"], nan=-np.inf))
    header = f"{'loss':28s} {'MAP@R':>20s} {'R@1':>20s} {'NMI':>8s} {'runs':>6s} {'ms/step':>8s}"
    lines = [f"after {steps} steps, sorted by {sort_by}; mean [95 % interval] over seeds, in %", header]
    for row in chosen:
        runs = f"{row['runs'] - row['failed']}/{row['runs']}"
        lines.append(
            f"{row['recipe']:28s} {_cell(row['MAP@R']):>20s} {_cell(row['R@1']):>20s} "
            f"{100 * row['NMI']['mean']:8.1f} {runs:>6s} {1000 * row['seconds_per_step']:8.1f}"
        )
    return "\n".join(lines)
