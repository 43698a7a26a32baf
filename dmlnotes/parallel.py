"""Independent training runs side by side, one per CPU core.

A temperature sweep trains many small networks that do not depend on each other, each
single-threaded (a small network keeps several threads busy poorly). On a CPU they go
faster as separate processes, one per core, than one after another. joblib's ``loky``
workers do the work: they start once per session and are reused, and they accept
functions defined in a notebook.

Every job seeds itself and runs single-threaded in a worker, so a job that also runs
single-threaded here gives exactly the same result (``tests/test_parallel.py``). A job
that uses torch's threads here would not: convolutions in channels-last layout add up
in a thread-dependent order. The temperature sweep, the comparisons of
:mod:`dmlnotes.experiments.comparison` and the benchmark therefore train single-threaded
wherever they run (:func:`cpu_threads`).

On a GPU the runs stay in this process, one after another. ``DMLNOTES_WORKERS=1`` does the
same anywhere (e.g. to profile), and ``DMLNOTES_WORKERS=n`` sets the number of processes.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence

import torch

from .checks import check_positive_int

WORKERS_ENV_VAR = "DMLNOTES_WORKERS"


def available_cores() -> int:
    """The CPU cores this process may use (its affinity, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


def default_workers(device: torch.device | str | None = None) -> int:
    """``$DMLNOTES_WORKERS`` when set, 1 on a GPU (one process owns it), else one per core."""
    configured = os.environ.get(WORKERS_ENV_VAR, "").strip()
    if configured:
        try:
            workers = int(configured)
        except ValueError:
            workers = 0
        if workers < 1:
            raise ValueError(f"{WORKERS_ENV_VAR} must be a positive integer, got {configured!r}")
        return workers
    if device is not None and torch.device(device).type != "cpu":
        return 1
    return available_cores()


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


def _single_threaded(function: Callable, args: tuple):
    torch.set_num_threads(1)  # one process per core: more threads would only compete
    return function(*args)


def run_jobs(function: Callable, jobs: Sequence[tuple], workers: int | None = None, device=None) -> list:
    """``[function(*job) for job in jobs]``, in that order, spread over ``workers`` processes.

    ``workers=None`` takes :func:`default_workers` for ``device``. With one worker, or one
    job, everything runs here, with torch's own thread setting.
    """
    jobs = [tuple(job) for job in jobs]
    workers = default_workers(device) if workers is None else workers
    workers = min(check_positive_int("workers", workers), len(jobs))
    if workers <= 1:
        return [function(*job) for job in jobs]
    from joblib import Parallel, delayed

    return Parallel(n_jobs=workers, backend="loky")(delayed(_single_threaded)(function, job) for job in jobs)


__all__ = ["WORKERS_ENV_VAR", "available_cores", "cpu_threads", "default_workers", "run_jobs"]
