"""The lessons as a student meets them: JupyterLab in Chromium, no internet.

For every lesson with a widget: its saved animations play (the copy is trusted), the
cells up to each widget run without error, and the widget's slider, moved by mouse and by
keyboard, redraws the figure without a warning and without killing the kernel. The
fixture notebook ``broken_widgets.ipynb`` shows that each of these checks can fail.
"""

from __future__ import annotations

import json
import time

import pytest
from browser.lab_notebook import LabNotebook
from browser.widget_check import BROKEN_WIDGETS, LESSONS, check_animation, check_widget, find_cells

LESSONS_WITH_WIDGETS = [path for path in LESSONS if find_cells(path).widgets]


def run_widgets(notebook: LabNotebook, cells) -> tuple[list[str], dict[int, float]]:
    """Check the saved animations, then run the notebook cell by cell up to each widget and
    check the widget; (problems, seconds spent running the cells up to each widget)."""
    problems = [problem for index in cells.animations for problem in check_animation(notebook, index)]
    seconds, started, next_cell = {}, time.monotonic(), 0
    for widget in cells.widgets:
        for index in cells.up_to(widget, start=next_cell):
            ok, _ = notebook.run_cell(index)
            problems += [f"{notebook.path} cell {index}: {text}" for text in notebook.stderr_outputs(index)]
            if not ok:
                return [*problems, f"{notebook.path} cell {index} raised an error"], seconds
        seconds[widget] = time.monotonic() - started
        next_cell = widget + 1
        problems += check_widget(notebook, widget)
        if notebook.kernel_trouble():
            break
    return problems, seconds


@pytest.mark.parametrize("lesson", LESSONS_WITH_WIDGETS, ids=lambda path: path.stem)
def test_widgets_redraw_and_animations_play(page, lab_server, lesson):
    notebook = LabNotebook(page, lab_server, lesson.name)
    notebook.open()
    problems, seconds = run_widgets(notebook, find_cells(lesson))
    print(f"{lesson.name}: cells up to each widget ran in " + ", ".join(f"{s:.0f} s" for s in seconds.values()))
    assert not problems, "\n".join(problems)


def test_every_lesson_has_a_widget_to_check():
    # The glob or the widget pattern going stale would make the test above check nothing.
    assert len(LESSONS) >= 14 and LESSONS_WITH_WIDGETS == LESSONS


# What the checks must report for each broken cell of the fixture notebook, by the cell's id.
EXPECTED_PROBLEMS = {
    "raises": ["did not redraw", "ValueError: the callback failed"],
    "frozen": ["did not redraw"],
    "warns": ["warning or error", "UserWarning: the figure is approximate"],
    "kills-kernel": ["the kernel died"],
    "frozen-animation": ["the animation showed"],  # fewer frames than expected after Play
}


def test_the_checks_report_broken_widgets_and_animations(page, lab_server):
    ids = [cell["id"] for cell in json.loads(BROKEN_WIDGETS.read_text())["cells"]]
    notebook = LabNotebook(page, lab_server, BROKEN_WIDGETS.name)
    notebook.open()
    problems, _ = run_widgets(notebook, find_cells(BROKEN_WIDGETS))
    report = "\n".join(problems)

    def about(cell_id):
        return [p for p in problems if p.startswith(f"{BROKEN_WIDGETS.name} cell {ids.index(cell_id)}:")]

    for cell_id, expected in EXPECTED_PROBLEMS.items():
        for text in expected:
            assert any(text in p for p in about(cell_id)), f"cell {cell_id!r}: no problem saying {text!r} in\n{report}"
    assert not about("works"), report
