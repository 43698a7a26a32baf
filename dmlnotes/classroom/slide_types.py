"""Slide metadata for a lecture, assigned from the lesson anatomy (DEVELOPERS.md).

Every lesson has the same headings, so one set of rules turns any lesson into a slideshow
(RISE in JupyterLab, ``make slides`` for static reveal.js). Each cell gets
``metadata.slideshow.slide_type``:

* the title and every ``##`` section (takeaway, goals, equation, worked example, training,
  widget, comparison, summary, ...) opens a **slide**; a ``###`` heading opens a **subslide**;
* the setup section, and code cells without output (definitions, checks that print
  nothing), are **skip**ped: they still run in the notebook, they just are not shown;
* every cell of the exercises is its own **subslide**, so the lecturer sets one at a time; a
  cell tagged ``solution`` is a speaker's **notes**: the lecturer sees it, the room does not;
* a cell after a figure (image, animation) opens a **subslide**, so a figure ends its slide
  and the reading of it starts fresh;
* a check that only prints (a code cell with an ``assert`` and text output) is a **fragment**;
* everything else continues the current slide (``-``).

The notebook's metadata also gets RISE's settings (:data:`RISE_SETTINGS`: long slides scroll).

A cell may override its rule: ``metadata.dmlnotes.slide_type`` (one of :data:`SLIDE_TYPES`)
is kept by every re-run of the tool.

Usage::

    python -m dmlnotes.classroom.slide_types notebooks/*.ipynb          # write the metadata
    python -m dmlnotes.classroom.slide_types --check notebooks/*.ipynb  # exit 1 if any is out of date
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

SLIDE_TYPES = ("slide", "subslide", "fragment", "skip", "notes", "-")
_HEADING = re.compile(r"^\s*(#{1,6})\s+(.*)")
# Sections whose body follows a rule of its own.
_SKIPPED_SECTIONS = re.compile(r"^setup\b", re.IGNORECASE)
_ONE_PER_SUBSLIDE_SECTIONS = re.compile(r"^exercises\b", re.IGNORECASE)
SOLUTION_TAG = "solution"  # the cell tag that marks an exercise's solution (make student removes them)


def _source(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _heading(cell) -> tuple[int, str] | None:
    """(level, text) of the heading a markdown cell opens with, else None."""
    if cell["cell_type"] != "markdown":
        return None
    match = _HEADING.match(_source(cell))
    return (len(match.group(1)), match.group(2).strip()) if match else None


def _has_figure(cell) -> bool:
    return any(
        any(mime.startswith("image/") or mime == "text/html" for mime in output.get("data", {}))
        for output in cell.get("outputs", [])
    )


def _prints_only(cell) -> bool:
    outputs = cell.get("outputs", [])
    return bool(outputs) and all(output["output_type"] == "stream" for output in outputs)


def override(cell) -> str | None:
    """The cell's explicit slide type (``metadata.dmlnotes.slide_type``), checked."""
    value = cell.get("metadata", {}).get("dmlnotes", {}).get("slide_type")
    if value is not None and value not in SLIDE_TYPES:
        raise ValueError(f"metadata.dmlnotes.slide_type is {value!r}; expected one of {', '.join(SLIDE_TYPES)}")
    return value


def slide_types(notebook) -> list[str]:
    """The slide type of every cell of ``notebook`` (a dict as in the .ipynb file)."""
    types = []
    section = ""  # the text of the current ## heading
    previous = None
    for index, cell in enumerate(notebook["cells"]):
        heading = _heading(cell)
        if heading and heading[0] <= 2:
            section = heading[1]
        if override(cell) is not None:
            kind = override(cell)
        elif SOLUTION_TAG in cell.get("metadata", {}).get("tags", []):
            kind = "notes"
        elif index == 0 or (heading and heading[0] <= 2):
            kind = "skip" if _SKIPPED_SECTIONS.match(section) else "slide"
        elif _SKIPPED_SECTIONS.match(section):
            kind = "skip"
        elif heading or _ONE_PER_SUBSLIDE_SECTIONS.match(section):
            kind = "subslide"
        elif cell["cell_type"] == "code" and not cell.get("outputs"):
            kind = "skip"
        elif previous is not None and _has_figure(previous):
            kind = "subslide"
        elif cell["cell_type"] == "code" and _prints_only(cell) and re.search(r"^\s*assert\b", _source(cell), re.M):
            kind = "fragment"
        else:
            kind = "-"
        types.append(kind)
        if kind != "skip":
            previous = cell
    return types


# RISE's settings for every lesson (notebook metadata "rise"): a long cell scrolls instead of
# running off the projector. A notebook's own values win.
RISE_SETTINGS = {"scroll": True}


def assign(notebook) -> bool:
    """Write the slide types into ``notebook``'s cells (and RISE's settings into its metadata);
    return whether anything changed."""
    rise = notebook.setdefault("metadata", {}).setdefault("rise", {})
    changed = any(key not in rise for key in RISE_SETTINGS)
    for key, value in RISE_SETTINGS.items():
        rise.setdefault(key, value)
    for cell, kind in zip(notebook["cells"], slide_types(notebook), strict=True):
        slideshow = cell.setdefault("metadata", {}).setdefault("slideshow", {})
        if slideshow.get("slide_type") != kind:
            slideshow["slide_type"] = kind
            changed = True
    return changed


def missing_slide_metadata(notebook) -> list[int]:
    """Indices of cells without a valid ``metadata.slideshow.slide_type``."""
    return [
        index
        for index, cell in enumerate(notebook["cells"])
        if cell.get("metadata", {}).get("slideshow", {}).get("slide_type") not in SLIDE_TYPES
    ]


def _write(path: Path, notebook) -> None:
    # The layout nbformat and JupyterLab write (one-space indent, a final newline), so the
    # diff of a re-run is the metadata alone.
    path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a notebook is out of date")
    args = parser.parse_args(argv)
    stale = []
    for path in args.notebooks:
        notebook = json.loads(path.read_text(encoding="utf-8"))
        if assign(notebook):
            stale.append(path)
            if not args.check:
                _write(path, notebook)
    verb = "out of date" if args.check else "updated"
    for path in stale:
        print(f"{path}: slide metadata {verb}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
