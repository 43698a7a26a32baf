"""Execute the notebooks: ``execute`` writes fresh outputs in place, ``bench`` times them.

Usage (the Makefile wraps both)::

    python -m dmlnotes.notebook_runner execute [notebooks...]
    python -m dmlnotes.notebook_runner bench [notebooks...]

Each notebook runs in a fresh kernel of the current Python environment with
``DMLNOTES_STATIC=1`` (widgets render as static figures) and ``DMLNOTES_PROGRESS=0`` (no
progress bars in committed outputs), and gets the kernel metadata JupyterLab saves
(:mod:`dmlnotes.notebook_metadata`). ``execute`` records the run time in the notebook's
metadata (``dmlnotes.run_seconds``), where the course map reads it. ``bench`` prints wall
time and executed size per
notebook and the totals, and flags notebooks over the budget. The comparison runs that
lessons share are cached in ``results/comparison/`` (committed); ``execute`` first removes the
runs of older code, so the lessons train what changed. ``bench --cold`` starts the notebooks
from an empty cache instead (where each lesson trains its own recipes and reads the earlier
lessons' runs, when the notebooks run in order).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from .notebook_metadata import set_jupyterlab_metadata

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
DEFAULT_SECONDS_BUDGET = 60.0
DEFAULT_BYTES_BUDGET = 2_000_000
# Issues may allow a named notebook more time.
SECONDS_BUDGETS = {"12_temperature.ipynb": 180.0}
# Widgets render as static figures, no progress bars in committed outputs.
KERNEL_ENVIRONMENT = {"DMLNOTES_STATIC": "1", "DMLNOTES_PROGRESS": "0"}


def find_notebooks(paths: list[str]) -> list[Path]:
    notebooks = [Path(p) for p in paths] if paths else sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    missing = [str(p) for p in notebooks if not p.is_file()]
    if missing:
        raise SystemExit(f"no such notebook: {', '.join(missing)}")
    return notebooks


def execute(path: Path, timeout: int = 900, environment: dict[str, str] | None = None):
    """Run one notebook in a fresh kernel with ``KERNEL_ENVIRONMENT`` (and ``environment``)
    in its environment; return (executed notebook, seconds)."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        record_timing=False,
    )
    environment = {**KERNEL_ENVIRONMENT, **(environment or {})}
    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)  # the kernel inherits it
    try:
        start = time.perf_counter()
        client.execute()
        seconds = time.perf_counter() - start
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    notebook.metadata.pop("widgets", None)
    # What JupyterLab saves, so that opening and saving the lesson leaves the file as it is.
    set_jupyterlab_metadata(notebook, notebook.metadata.get("language_info", {}).get("version"))
    return notebook, seconds


def serialized_size(notebook) -> int:
    import nbformat

    return len(nbformat.writes(notebook).encode("utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["execute", "bench"])
    parser.add_argument("notebooks", nargs="*", help="default: notebooks/NN_*.ipynb")
    parser.add_argument("--cold", action="store_true", help="start from an empty comparison cache (a new machine)")
    args = parser.parse_intermixed_args(argv)
    environment = {}
    if args.cold:
        cold_cache = tempfile.TemporaryDirectory(prefix="dmlnotes-comparison-")
        environment["DMLNOTES_COMPARISON_CACHE"] = cold_cache.name
    elif args.command == "execute":
        from dmlnotes.experiments.comparison import cache_dir, prune_stale_runs

        if removed := prune_stale_runs():  # the committed runs are the current code's only
            print(f"removed {len(removed)} comparison runs of older code from {cache_dir()}", file=sys.stderr)

    import nbformat

    rows = []
    over_budget = []
    for path in find_notebooks(args.notebooks):
        print(f"running {path.name} ...", file=sys.stderr, flush=True)
        notebook, seconds = execute(path, environment=environment)
        size = serialized_size(notebook)
        if args.command == "execute":
            # The course map reads the lesson's run time from here (dmlnotes.classroom.course_map).
            notebook.metadata.setdefault("dmlnotes", {})["run_seconds"] = round(seconds, 1)
            with tempfile.NamedTemporaryFile(
                "w", dir=path.parent, suffix=".ipynb", delete=False, encoding="utf-8"
            ) as tmp:
                nbformat.write(notebook, tmp)
            os.chmod(tmp.name, path.stat().st_mode)  # keep the file's permissions, not the temp file's 0600
            os.replace(tmp.name, path)
        budget = SECONDS_BUDGETS.get(path.name, DEFAULT_SECONDS_BUDGET)
        flags = []
        if seconds > budget:
            flags.append(f"over {budget:.0f} s")
        if size > DEFAULT_BYTES_BUDGET:
            flags.append(f"over {DEFAULT_BYTES_BUDGET / 1e6:.0f} MB")
        if flags:
            over_budget.append(path.name)
        rows.append((path.name, seconds, size, ", ".join(flags)))

    width = max(len(r[0]) for r in rows)
    print(f"{'notebook':<{width}}  {'seconds':>8}  {'size kB':>8}  budget")
    for name, seconds, size, flag in rows:
        print(f"{name:<{width}}  {seconds:8.1f}  {size / 1000:8.0f}  {flag or 'ok'}")
    print(f"{'total':<{width}}  {sum(r[1] for r in rows):8.1f}  {sum(r[2] for r in rows) / 1000:8.0f}")
    if over_budget:
        print(f"over budget: {', '.join(over_budget)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
