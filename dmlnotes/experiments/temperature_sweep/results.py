"""A sweep's results: one :class:`RunResult` per network, their :class:`SweepResult` and its files.

A :class:`SweepResult` saves to JSON (setup, configuration and runs) or CSV (one row per
run) and loads back, so a notebook shows a sweep run elsewhere. The format is the one the
single-module ``temperature_sweep.py`` wrote: its files still load.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch import nn

from ...losses import NormSoftmaxLoss
from .config import CONFIGS, TABLE1_RECALL_AT_1, TABLE1_TEMPERATURES, SweepConfig
from .signal import TrainingSignal


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
