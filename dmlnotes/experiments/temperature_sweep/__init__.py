"""The temperature sweep of the survey's Table 1 (section 2.2, eq. (19); Zhai & Wu 2018).

Zhai & Wu trained the normalised softmax (:class:`~dmlnotes.losses.NormSoftmaxLoss`) on
CUB-200-2011 at seven temperatures and measured Recall@1 on the unseen test classes; the
survey copies their row as Table 1 (:data:`TABLE1_TEMPERATURES`, :data:`TABLE1_RECALL_AT_1`).
:func:`run_sweep` repeats that experiment: for each temperature ``T`` and seed it trains
a fresh network with ``NormSoftmaxLoss(num_train_classes, dim, temperature=T)`` on
class-balanced batches and measures Recall@1 on the held-out test classes (cosine nearest
neighbour, the query excluded) and, on fixed training batches, what the temperature did
to the training signal (:class:`TrainingSignal`).

Two setups, chosen by name (``setup="glyphs"`` or ``"cub"``, or a :class:`SweepConfig`):
``"glyphs"`` (default) trains a small CNN from scratch on a CPU in seconds per network;
``"cub"`` is Zhai & Wu's ImageNet ResNet-50 recipe on CUB-200-2011, about an hour per run
on a CUDA GPU, so run it as a script::

    dmlnotes-temperature-sweep --setup cub --seeds 0 1 --out data/temperature_sweep_cub.json

Results save to JSON or CSV (:meth:`SweepResult.save`) and load back
(:meth:`SweepResult.load`), so a notebook shows a sweep run elsewhere;
:func:`dmlnotes.plots.plot_sweep` draws them beside Table 1.

Modules: ``config`` (Table 1, the setups), ``signal`` (the training-signal measurement),
``results`` (runs, sweeps, their files), ``sweep`` (training), ``cli`` (the script). Every
public name is importable from here.
"""

from .cli import build_parser, main
from .config import (
    CONFIGS,
    CUB,
    CUB_STEPS_PER_EPOCH,
    CUB_TRAIN_IMAGES,
    GLYPHS,
    SETUPS,
    TABLE1_RECALL_AT_1,
    TABLE1_TEMPERATURES,
    SweepConfig,
    resolve_setup,
)
from .results import RunResult, SweepResult
from .signal import HARD_FRACTION, TrainingSignal, diagnostic_batches, hard_share, training_signal
from .sweep import check_cub_device, cpu_threads, default_model_factory, load_data, run_sweep, train_one


def __getattr__(name: str):
    # plot_sweep lives in dmlnotes.plots; imported on first use, so training (worker processes,
    # the CUB script) does not load matplotlib.
    if name == "plot_sweep":
        from ...plots import plot_sweep

        return plot_sweep
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CONFIGS",
    "CUB",
    "CUB_STEPS_PER_EPOCH",
    "CUB_TRAIN_IMAGES",
    "GLYPHS",
    "HARD_FRACTION",
    "SETUPS",
    "TABLE1_RECALL_AT_1",
    "TABLE1_TEMPERATURES",
    "RunResult",
    "SweepConfig",
    "SweepResult",
    "TrainingSignal",
    "build_parser",
    "check_cub_device",
    "cpu_threads",
    "default_model_factory",
    "diagnostic_batches",
    "hard_share",
    "load_data",
    "main",
    "plot_sweep",
    "resolve_setup",
    "run_sweep",
    "train_one",
    "training_signal",
]
