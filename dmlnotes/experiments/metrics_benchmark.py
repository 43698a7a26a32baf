"""Time Recall@1,2,4,8 plus MAP@R on galleries of real-data size, beside pytorch-metric-learning.

Usage: ``make bench-metrics`` or ``python -m dmlnotes.experiments.metrics_benchmark``.

Random embeddings of dimension 128 in classes of 10 samples (the shape of Stanford Online
Products or a face set: many small classes), each query left out of its own gallery.
Timed, as the median of ``--repeats`` runs:

- ``retrieval_metrics(..., with_nmi=False)`` with the torch backend and, when faiss is
  installed, the faiss backend (one neighbour search for all five numbers);
- pytorch-metric-learning's ``AccuracyCalculator`` computing ``precision_at_1`` and
  ``mean_average_precision_at_r`` (``k="max_bin_count"``, its faiss search by default);
- a bare faiss flat search of the same depth, the floor of any exact method.

The last column checks that each method gives our Recall@1 and MAP@R.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import numpy as np
import torch

from ..metrics import faiss_available, retrieval_metrics

DIMENSION = 128
PER_CLASS = 10


def median_seconds(run: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Median wall time of ``repeats`` calls after one warm-up call, and the last result."""
    result = run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), result


def methods(embeddings: torch.Tensor, labels: torch.Tensor) -> dict[str, Callable[[], dict | None]]:
    """Each method as a call returning ``{"R@1": ..., "MAP@R": ...}`` (None: not comparable)."""
    found = {"dmlnotes, torch": lambda: retrieval_metrics(embeddings, labels, with_nmi=False, backend="torch")}
    if faiss_available():
        found["dmlnotes, faiss"] = lambda: retrieval_metrics(embeddings, labels, with_nmi=False, backend="faiss")
    try:
        from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
    except ImportError:
        pass
    else:
        calculator = AccuracyCalculator(
            include=("precision_at_1", "mean_average_precision_at_r"), k="max_bin_count", device=embeddings.device
        )

        def theirs() -> dict:
            values = calculator.get_accuracy(embeddings, labels)
            return {"R@1": values["precision_at_1"], "MAP@R": values["mean_average_precision_at_r"]}

        if faiss_available():  # its default search is faiss
            found["PML AccuracyCalculator"] = theirs
    if faiss_available():
        import faiss

        def bare_search() -> None:
            points = embeddings.numpy()
            index = faiss.IndexFlatL2(points.shape[1])
            index.add(points)
            index.search(points, PER_CLASS)  # the query itself and its 9 classmates' depth
            return None

        found["faiss flat search alone"] = bare_search
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 60_000], help="gallery sizes")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per method (the median is reported)")
    args = parser.parse_args(argv)
    print(
        f"Recall@1,2,4,8 + MAP@R on random {DIMENSION}-d embeddings, classes of {PER_CLASS}, "
        f"{torch.get_num_threads()} threads, CPU; medians of {args.repeats} runs"
        + ("" if faiss_available() else "; faiss not installed (pip install faiss-cpu) for the other rows")
    )
    print(f"{'samples':>8}  {'method':<24}  {'seconds':>8}  {'same R@1 and MAP@R':>18}")
    for size in args.sizes:
        generator = torch.Generator().manual_seed(size)
        embeddings = torch.randn(size, DIMENSION, generator=generator)
        labels = torch.arange(size) // PER_CLASS
        reference = None
        for name, run in methods(embeddings, labels).items():
            seconds, values = median_seconds(run, args.repeats)
            if reference is None:
                reference = values
            same = (
                "-"
                if values is None
                else str(all(abs(values[key] - reference[key]) < 1e-6 for key in ("R@1", "MAP@R")))
            )
            print(f"{size:>8}  {name:<24}  {seconds:8.2f}  {same:>18}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
