"""Every committed lesson keeps the collection's conventions (see dmlnotes.lesson_checks)."""

import json
from pathlib import Path

import pytest

from dmlnotes import lesson_checks

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def load(path):
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_number_in_prose_was_measured_by_the_notebook(path):
    problems = lesson_checks.unmeasured_numbers(load(path))
    assert not problems, "numbers typed into markdown, not shown by an output nor marked as literature:\n" + "\n".join(
        map(str, problems)
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_output_loads_anything_from_the_internet(path):
    problems = lesson_checks.external_resources(load(path))
    assert not problems, "\n".join(map(str, problems))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_lesson_anatomy(path):
    problems = lesson_checks.anatomy_problems(load(path))
    assert not problems, "\n".join(map(str, problems))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_cell_carries_slide_metadata(path):
    problems = lesson_checks.slide_problems(load(path))
    assert not problems, "\n".join(map(str, problems))


def test_there_are_lessons():
    assert len(NOTEBOOKS) >= 10


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_kernel_metadata_is_what_jupyterlab_saves(path):
    problems = lesson_checks.kernel_metadata(load(path))
    assert not problems, "\n".join(map(str, problems)) + "\nrun: python -m dmlnotes.notebook_metadata " + str(path)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_solution_is_a_cell_tagged_solution(path):
    problems = lesson_checks.solution_cells(load(path))
    assert not problems, "\n".join(map(str, problems)) + "\nrun: python -m dmlnotes.solutions tag " + str(path)
