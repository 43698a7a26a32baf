"""The sweep as a script: ``dmlnotes-temperature-sweep`` or ``python -m dmlnotes.experiments.temperature_sweep``.

Runs :func:`~dmlnotes.experiments.temperature_sweep.run_sweep` with verbose output, prints
the table beside Table 1 and writes the results file (default
``data/temperature_sweep_<setup>.json``)."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

from torch import nn

from ...checks import check_positive
from ...data import DatasetNotFoundError
from ...data.paths import data_root
from .config import CONFIGS, SETUPS, TABLE1_TEMPERATURES
from .sweep import run_sweep


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
