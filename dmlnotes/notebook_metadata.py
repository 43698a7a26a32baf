"""The notebook metadata JupyterLab writes, so that opening and saving a lesson changes nothing.

JupyterLab 4 saves the kernel's spec (``display_name`` "Python 3 (ipykernel)", ipykernel's
own kernel spec) and the ``language_info`` the kernel reports. ``make notebooks`` writes
the same (:func:`set_jupyterlab_metadata`), :func:`metadata_problems` is the lesson check,
and the command line normalises committed notebooks without executing them::

    python -m dmlnotes.notebook_metadata notebooks/*.ipynb
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
# What ipykernel reports in its kernel_info reply; only "version" (Python's) varies by machine.
LANGUAGE_INFO = {
    "codemirror_mode": {"name": "ipython", "version": 3},
    "file_extension": ".py",
    "mimetype": "text/x-python",
    "name": "python",
    "nbconvert_exporter": "python",
    "pygments_lexer": "ipython3",
}


def set_jupyterlab_metadata(notebook: dict, python_version: str | None = None) -> None:
    """Kernel spec and language info as JupyterLab saves them; keeps the recorded Python
    version unless ``python_version`` is given (the kernel's, after an execution)."""
    metadata = notebook.setdefault("metadata", {})
    metadata["kernelspec"] = dict(KERNELSPEC)
    version = python_version or metadata.get("language_info", {}).get("version")
    if version is None:
        version = ".".join(map(str, sys.version_info[:3]))
    metadata["language_info"] = {**json.loads(json.dumps(LANGUAGE_INFO)), "version": version}


def metadata_problems(notebook: dict) -> list[str]:
    """How the notebook's kernel metadata differs from what JupyterLab would save."""
    metadata = notebook.get("metadata", {})
    problems = []
    if metadata.get("kernelspec") != KERNELSPEC:
        problems.append(f"kernelspec is {metadata.get('kernelspec')}, JupyterLab saves {KERNELSPEC}")
    info = dict(metadata.get("language_info", {}))
    if not str(info.pop("version", "")).startswith("3."):
        problems.append("language_info has no Python version")
    if info != LANGUAGE_INFO:
        problems.append(f"language_info is {info}, ipykernel reports {LANGUAGE_INFO} (and a version)")
    return problems


def dumps(notebook: dict) -> str:
    """A notebook's file text as nbformat and JupyterLab write it (sorted keys, indent 1)."""
    return json.dumps(notebook, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def normalize(path: Path) -> bool:
    """Rewrite a notebook's kernel metadata in place (cells and outputs untouched); True if it changed."""
    text = Path(path).read_text(encoding="utf-8")
    notebook = json.loads(text)
    set_jupyterlab_metadata(notebook)
    if dumps(notebook) == text:
        return False
    Path(path).write_text(dumps(notebook), encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    paths = [Path(p) for p in (argv if argv is not None else sys.argv[1:])]
    if not paths:
        raise SystemExit("usage: python -m dmlnotes.notebook_metadata NOTEBOOK.ipynb ...")
    for path in paths:
        print(f"{path}: {'normalised' if normalize(path) else 'already as JupyterLab saves it'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
