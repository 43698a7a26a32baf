"""``python -m dmlnotes.benchmark``: run the benchmark, merge shards, print the table.

    python -m dmlnotes.benchmark run                      # everything on glyphs, here
    python -m dmlnotes.benchmark run --jobs 2             # two processes side by side
    python -m dmlnotes.benchmark run --phase search --shard 3/8 --out part3.json   # a job array's part
    python -m dmlnotes.benchmark merge part*.json --out search.json
    python -m dmlnotes.benchmark run --phase final --search search.json --shard 3/8 --out final3.json
    python -m dmlnotes.benchmark table results.json

On a cluster (SLURM, for example) a job array runs the search with ``--shard
$SLURM_ARRAY_TASK_ID/$N``, ``merge`` combines the parts, then a second array runs the final
phase with ``--search`` pointing at the merged file, and a last ``merge`` joins everything.
A results file that exists is extended: runs already in it are not trained again.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .recipes import resolve_recipes
from .results import format_table, merge, read_results, summarize, write_results
from .runs import choose_settings, final_tasks, parse_shard, run_tasks, search_tasks, shard
from .setups import SETUPS, resolve_setup


def default_results_path(setup: str) -> Path:
    from ..data.paths import data_root

    return data_root() / "benchmark" / f"{setup}.json"


def _done(records) -> set:
    return {(r["phase"], r["recipe"], tuple(sorted(r["overrides"].items())), r["seed"]) for r in records}


def _run_phase(phase, setup, recipes, args, records, out) -> list[dict]:
    if phase == "search":
        tasks = search_tasks(setup, recipes)
    else:
        search_records = read_results(args.search) if args.search else records
        tasks = final_tasks(setup, recipes, choose_settings(search_records, recipes))
    if args.shard:
        tasks = shard(tasks, *parse_shard(args.shard))
    done = _done(records)
    todo = [task for task in tasks if task.key not in done]
    print(f"{phase}: {len(todo)} runs to train ({len(tasks) - len(todo)} already in {out})", flush=True)
    start = time.perf_counter()
    chunk = 2 * max(args.jobs, 1)  # written after every chunk, so an interrupted run resumes where it stopped
    for first in range(0, len(todo), chunk):
        records = merge(records, run_tasks(todo[first : first + chunk], setup, args.jobs, args.root, args.device))
        write_results(out, records)
        done_now = min(first + chunk, len(todo))
        print(f"{phase}: {done_now}/{len(todo)} runs, {time.perf_counter() - start:.0f} s", flush=True)
    return records


def _run(args) -> int:
    setup = resolve_setup(args.setup)
    recipes = resolve_recipes(args.losses)
    out = Path(args.out) if args.out else default_results_path(setup.name)
    records = read_results(out) if out.exists() else []
    phases = ("search", "final") if args.phase == "all" else (args.phase,)
    if args.phase == "all" and args.shard:
        raise SystemExit("--shard needs --phase search or --phase final: the final runs wait for the whole search")
    for phase in phases:
        records = _run_phase(phase, setup, recipes, args, records, out)
    rows = summarize(records)
    for steps in sorted({row["steps"] for row in rows}):
        print(format_table(rows, steps))
    return 0


def _merge(args) -> int:
    records = merge(*(read_results(path) for path in args.files))
    print(f"{len(records)} records written to {write_results(args.out, records)}")
    return 0


def _table(args) -> int:
    rows = summarize(read_results(args.file))
    for steps in sorted({row["steps"] for row in rows}):
        print(format_table(rows, steps, sort_by=args.sort_by))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dmlnotes.benchmark", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="train the search and/or final runs")
    run.add_argument("--setup", default="glyphs", choices=list(SETUPS))
    run.add_argument("--phase", default="all", choices=["all", "search", "final"])
    run.add_argument("--losses", nargs="+", metavar="NAME", help="recipe names (default: every loss)")
    run.add_argument("--jobs", type=int, default=1, help="processes side by side on this machine")
    run.add_argument("--shard", metavar="K/N", help="train only the K-th of N parts of the phase's runs")
    run.add_argument("--search", metavar="FILE", help="results holding the search runs (final phase)")
    run.add_argument("--out", metavar="FILE", help="results file (default data/benchmark/<setup>.json)")
    run.add_argument("--root", metavar="DIR", help="folder of the real data set (omniglot, cub)")
    run.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: the best available)")
    run.set_defaults(handler=_run)
    merger = commands.add_parser("merge", help="combine results files (shards)")
    merger.add_argument("files", nargs="+")
    merger.add_argument("--out", required=True)
    merger.set_defaults(handler=_merge)
    table = commands.add_parser("table", help="print the summary of a results file")
    table.add_argument("file")
    table.add_argument("--sort-by", default="MAP@R", choices=["MAP@R", "R@1", "NMI"])
    table.set_defaults(handler=_table)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
