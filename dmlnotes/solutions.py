"""Exercise solutions as cells tagged ``solution``, and the students' versions without them.

A lesson's exercises are markdown; each solution is its own cell tagged ``solution``: the
collapsible ``<details><summary>Solution</summary> ... </details>`` markdown, and the code
cells of the exercises section that compute solutions. Starter code a student completes
is tagged ``exercise``. Then nbconvert's ``TagRemovePreprocessor`` writes exercise
versions (``make student``), and :func:`solution_problems` (a lesson check) makes sure a
new lesson cannot forget a tag.

    python -m dmlnotes.solutions tag notebooks/*.ipynb         # split and tag, once per lesson
    python -m dmlnotes.solutions student --out exercises       # the students' versions

``tag`` splits a markdown cell that holds an exercise and its solution at the
``<details>`` block and tags the code cells of the exercises section; it changes no
source text, no output and no code, and running it again changes nothing.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

SOLUTION_TAG = "solution"
EXERCISE_TAG = "exercise"  # starter code in the exercises section: stays in the students' versions
_SOLUTION_BLOCK = re.compile(r"<details>\s*<summary>\s*Solution.*?</details>", re.DOTALL | re.IGNORECASE)
# Also the folded "Measured solutions" a code cell renders: any <summary> that names a solution.
_SOLUTION_SUMMARY = re.compile(r"<summary>[^<]*\bsolutions?\b", re.IGNORECASE)
_EXERCISES = re.compile(r"^#+\s*Exercises", re.MULTILINE)
_AFTER_EXERCISES = re.compile(r"^#+\s*(?:Summary|References)", re.MULTILINE)


def _source(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _outputs_text(cell) -> str:
    parts = []
    for output in cell.get("outputs", []):
        parts.append(_source({"source": output.get("text", "")}))
        parts += [_source({"source": v}) for m, v in output.get("data", {}).items() if m.startswith("text/")]
    return "\n".join(parts)


def exercise_section(cells) -> range:
    """Indices of the cells from the exercises heading up to the next summary or references heading."""

    def markdown(index: int) -> str:
        return _source(cells[index]) if cells[index]["cell_type"] == "markdown" else ""

    start = next((i for i in range(len(cells)) if _EXERCISES.search(markdown(i))), None)
    if start is None:
        return range(0)
    end = next((i for i in range(start + 1, len(cells)) if _AFTER_EXERCISES.search(markdown(i))), len(cells))
    return range(start, end)


def split_markdown(cell) -> list:
    """The cell cut at its solution blocks: text, solution, text, ...; solutions tagged."""
    import nbformat

    text = _source(cell)
    pieces, last = [], 0
    for match in _SOLUTION_BLOCK.finditer(text):
        pieces += [(text[last : match.start()], False), (match.group(0), True)]
        last = match.end()
    pieces.append((text[last:], False))
    pieces = [(piece.strip("\n"), solution) for piece, solution in pieces if piece.strip()]
    if len(pieces) == 1 and pieces[0][1] == (SOLUTION_TAG in _tags(cell)):
        return [cell]  # already one cell, tagged as it should be
    cells = []
    for number, (piece, solution) in enumerate(pieces):
        new = nbformat.v4.new_markdown_cell(piece)
        if number == 0:  # the first piece keeps the cell's id and metadata (slides, ...)
            new.id, new.metadata = cell.get("id", new.id), nbformat.from_dict(dict(cell.get("metadata", {})))
        elif "id" in cell:
            new.id = f"{cell['id'][:56]}-s{number}"  # stable ids: running the script twice gives the same file
        tags = [t for t in new.metadata.get("tags", []) if t != SOLUTION_TAG] + ([SOLUTION_TAG] if solution else [])
        new.metadata.pop("tags", None)
        if tags:
            new.metadata["tags"] = tags
        cells.append(new)
    return cells


def tag_solutions(notebook) -> None:
    """Split solution blocks into their own cells and tag the exercises section's code as solutions."""
    cells = []
    for cell in notebook.cells:
        cells += (
            split_markdown(cell) if cell.cell_type == "markdown" and _SOLUTION_BLOCK.search(cell.source) else [cell]
        )
    notebook.cells = cells
    for index in exercise_section(cells):
        cell = cells[index]
        if cell.cell_type == "code" and not {SOLUTION_TAG, EXERCISE_TAG} & set(_tags(cell)):
            cell.metadata["tags"] = _tags(cell) + [SOLUTION_TAG]


def solution_problems(notebook) -> list[tuple[int, str]]:
    """Solutions that are not a cell of their own tagged ``solution``: (cell index, what)."""
    cells = notebook["cells"]
    section = exercise_section(cells)
    problems = []
    for index, cell in enumerate(cells):
        text, tagged = _source(cell), SOLUTION_TAG in _tags(cell)
        if cell["cell_type"] == "markdown":
            blocks = _SOLUTION_BLOCK.findall(text)
            if blocks and not tagged:
                problems.append((index, "a <details><summary>Solution block in a cell not tagged 'solution'"))
            elif blocks and _SOLUTION_BLOCK.sub("", text).strip():
                problems.append((index, "a solution shares its cell with other text: give it a cell of its own"))
            elif tagged and not blocks:
                problems.append((index, "tagged 'solution' but holds no <details><summary>Solution block"))
        elif cell["cell_type"] == "code" and not tagged:
            if _SOLUTION_SUMMARY.search(text) or _SOLUTION_SUMMARY.search(_outputs_text(cell)):
                problems.append((index, "a code cell that shows a solution is not tagged 'solution'"))
            elif index in section and EXERCISE_TAG not in _tags(cell):
                problems.append(
                    (index, "a code cell of the exercises section is tagged neither 'solution' nor 'exercise'")
                )
    return problems


def student_version(notebook):
    """A copy of the notebook without the cells tagged ``solution`` (nbconvert's TagRemovePreprocessor)."""
    import copy

    from nbconvert.preprocessors import TagRemovePreprocessor

    remover = TagRemovePreprocessor(remove_cell_tags={SOLUTION_TAG}, enabled=True)
    stripped, _ = remover.preprocess(copy.deepcopy(notebook), {})
    return stripped


def write_student_versions(paths: list[Path], out: Path) -> list[Path]:
    """The students' version of each notebook, in ``out`` under the same name."""
    import nbformat

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        if not any(SOLUTION_TAG in _tags(c) for c in notebook.cells):
            raise SystemExit(f"{path}: no cell is tagged 'solution'; run: python -m dmlnotes.solutions tag {path}")
        nbformat.write(student_version(notebook), out / path.name)
        written.append(out / path.name)
    return written


def main(argv: list[str] | None = None) -> int:
    import nbformat

    from .notebook_runner import find_notebooks

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["tag", "student"])
    parser.add_argument("notebooks", nargs="*", help="default: notebooks/NN_*.ipynb")
    parser.add_argument(
        "--out", type=Path, default=Path("exercises"), help="student: folder to write (default exercises)"
    )
    args = parser.parse_intermixed_args(argv)
    paths = find_notebooks(args.notebooks)
    if args.command == "student":
        written = write_student_versions(paths, args.out)
        print(f"{len(written)} exercise versions without solutions in {args.out}/")
        return 0
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        before = nbformat.writes(notebook)
        tag_solutions(notebook)
        if nbformat.writes(notebook) != before:
            nbformat.write(notebook, path)
            print(f"{path}: solutions tagged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
