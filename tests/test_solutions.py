"""Solutions are cells tagged 'solution'; the students' versions hold none of them."""

import ast
import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from dmlnotes import lesson_checks, solutions

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
EXERCISE = "## Exercises\n\n1. Compute $1 + 1$."
SOLUTION = "<details><summary>Solution</summary>\n\nIt is 2.\n</details>"


def lesson_before_tagging():
    folded = new_code_cell('display(Markdown("<details><summary>Measured solutions</summary>..."))')
    folded.outputs.append(new_output("display_data", data={"text/markdown": "<details><summary>Measured solutions"}))
    return new_notebook(
        cells=[
            new_markdown_cell("# Lesson"),
            new_markdown_cell(f"{EXERCISE}\n\n{SOLUTION}\n\n2. Now $2 + 2$.\n\n{SOLUTION.replace('2.', '4.')}"),
            new_code_cell("assert 1 + 1 == 2  # exercise 1, measured"),
            folded,
            new_markdown_cell("## Summary\n\nAdding."),
        ]
    )


def test_untagged_solutions_fail_the_lesson_check_and_tagging_fixes_them():
    notebook = lesson_before_tagging()
    found = [p.text for p in lesson_checks.solution_cells(notebook)]
    assert any("not tagged 'solution'" in t for t in found) and any(
        "code cell that shows a solution" in t for t in found
    )
    assert any("tagged neither" in t for t in found)
    solutions.tag_solutions(notebook)
    assert lesson_checks.solution_cells(notebook) == []
    kinds = [(c.cell_type, c.metadata.get("tags", [])) for c in notebook.cells]
    assert kinds == [
        ("markdown", []),
        ("markdown", []),
        ("markdown", ["solution"]),
        ("markdown", []),
        ("markdown", ["solution"]),
        ("code", ["solution"]),
        ("code", ["solution"]),
        ("markdown", []),
    ]
    assert notebook.cells[1].source == EXERCISE and notebook.cells[2].source == SOLUTION
    again = nbformat.writes(notebook)
    solutions.tag_solutions(notebook)
    assert nbformat.writes(notebook) == again  # running the script twice changes nothing


def test_a_solution_sharing_its_cell_fails_even_when_tagged():
    cell = new_markdown_cell(f"{EXERCISE}\n\n{SOLUTION}", metadata={"tags": ["solution"]})
    notebook = new_notebook(cells=[cell])
    assert [p.text for p in lesson_checks.solution_cells(notebook)] == [
        "a solution shares its cell with other text: give it a cell of its own"
    ]


def test_starter_code_tagged_exercise_stays_for_the_students():
    notebook = lesson_before_tagging()
    notebook.cells[2].metadata["tags"] = ["exercise"]
    solutions.tag_solutions(notebook)
    student = solutions.student_version(notebook)
    assert "assert 1 + 1 == 2  # exercise 1, measured" in [c.source for c in student.cells]


def names(cell, context) -> set[str]:
    try:
        tree = ast.parse(cell.source)
    except SyntaxError:  # IPython magics
        return set()
    found = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, context)}
    return found | ({a.arg for a in ast.walk(tree) if isinstance(a, ast.arg)} if context is ast.Store else set())


def names_only_solutions_define(cells) -> set[str]:
    """Names a kept code cell reads after a solution assigned them, that no kept cell assigns."""
    kept = [c for c in cells if c.cell_type == "code" and "solution" not in c.metadata.get("tags", [])]
    assigned_by_kept = set().union(*(names(c, ast.Store) for c in kept))
    solution_only, missing = set(), set()
    for cell in (c for c in cells if c.cell_type == "code"):
        if "solution" in cell.metadata.get("tags", []):
            solution_only |= names(cell, ast.Store) - assigned_by_kept
        else:
            missing |= names(cell, ast.Load) & solution_only
    return missing


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_students_versions_hold_no_solution_and_every_exercise(path, tmp_path):
    original = nbformat.read(path, as_version=4)
    (written,) = solutions.write_student_versions([path], tmp_path)
    student = nbformat.read(written, as_version=4)
    text = nbformat.writes(student)
    assert '"solution"' not in text and not re.search(r"<summary>\s*(?:Measured )?solution", text, re.IGNORECASE)
    removed = [c for c in original.cells if "solution" in c.metadata.get("tags", [])]
    kept = [c for c in original.cells if "solution" not in c.metadata.get("tags", [])]
    assert removed and all(c.source not in text for c in removed if c.cell_type == "code")
    assert [c.source for c in student.cells] == [c.source for c in kept]  # exercises and all else remain
    assert any(re.search(r"^#+\s*Exercises", c.source, re.MULTILINE) for c in student.cells)
    missing = names_only_solutions_define(original.cells)  # such a cell would fail in the exercise version
    assert not missing, f"the exercise version reads names only a solution defines: {sorted(missing)}"


def test_a_cell_that_needs_a_solutions_variable_is_found():
    notebook = lesson_before_tagging()
    notebook.cells.append(new_code_cell("print(total)"))
    notebook.cells[2].source = "total = 1 + 1"
    solutions.tag_solutions(notebook)
    assert names_only_solutions_define(notebook.cells) == {"total"}
