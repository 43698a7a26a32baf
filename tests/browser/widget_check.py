"""What a student does with a lesson's widgets and animations, and what must follow.

``check_widget`` moves a widget's slider with the mouse, then with the keyboard, and after
each move expects a new figure, no warning or error under the cell, and the same live
kernel. ``check_animation`` presses an animation's Play button and expects the frames to
change. Both return the problems they saw (an empty list: all is well), so a test of a
broken notebook can assert that the checks see what is wrong.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

from browser.lab_notebook import LabNotebook
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

REPOSITORY = Path(__file__).resolve().parents[2]
LESSONS = sorted((REPOSITORY / "notebooks").glob("[0-9][0-9]_*.ipynb"))
BROKEN_WIDGETS = Path(__file__).parent / "broken_widgets.ipynb"  # broken on purpose: the checks must say so

# A widget of the collection: dmlnotes.plots.interactive (or snapshot_slider), or ipywidgets' interact.
WIDGET_CALL = re.compile(r"(?<!def )\b(?:interactive|interact|snapshot_slider)\(")
ANIMATION_MARK = "_anim_img"  # the image element of matplotlib's JavaScript player (dmlnotes.plots.animate_runs)
ANIMATION_NOTE = "_anim_note"  # dmlnotes.plots' note under the player, hidden once the player's script runs


@dataclass(frozen=True)
class NotebookCells:
    code: list[int]  # indices of the code cells
    widgets: list[int]  # indices of the cells that show a widget
    animations: list[int]  # indices of the cells whose saved output is an animation player

    def up_to(self, widget: int, start: int = 0) -> list[int]:
        """The code cells from ``start`` to the widget's cell: what "Run All Above" and then Run run."""
        return [i for i in self.code if start <= i <= widget]


def find_cells(path: Path) -> NotebookCells:
    cells = json.loads(path.read_text())["cells"]
    code = [(i, cell) for i, cell in enumerate(cells) if cell["cell_type"] == "code"]
    widgets = [i for i, cell in code if WIDGET_CALL.search("".join(cell["source"]))]
    animations = [i for i, cell in code if ANIMATION_MARK in json.dumps(cell.get("outputs", []))]
    return NotebookCells([i for i, _ in code], widgets, animations)


def figure_signature(cell) -> str:
    """The images under the widget, as data: a redrawn figure changes it."""
    return "|".join(
        cell.locator(".jupyter-widgets-output-area img, .widget-output img").evaluate_all(
            "images => images.map(image => image.src)"
        )
    )


def wait_for_redraw(notebook: LabNotebook, cell, before: str, timeout: float, settle: float = 2.0) -> str | None:
    """The figure's new signature, or None if the kernel went idle (the callback is done) and
    stayed idle for ``settle`` seconds without a new figure arriving."""
    deadline = time.monotonic() + timeout
    while notebook.wait_until_idle(timeout=max(deadline - time.monotonic(), 0.1)):
        settled = time.monotonic() + settle
        while time.monotonic() < settled:
            after = figure_signature(cell)
            if after and after != before:
                return after
            time.sleep(0.1)
        if notebook.kernel_status() == "idle" or time.monotonic() > deadline:
            return None
    return None


def _readout(slider) -> str:
    readout = slider.locator(".widget-readout")
    return readout.inner_text().strip() if readout.count() else ""


def check_widget(notebook: LabNotebook, index: int, timeout: float = 60.0) -> list[str]:
    """Move the slider of the widget in cell ``index`` (already run) by mouse, then by keyboard."""
    where = f"{notebook.path} cell {index}"
    cell = notebook.cell(index)
    slider = cell.locator(".widget-slider").first
    try:
        slider.wait_for(state="visible", timeout=timeout * 1000)
    except Exception:  # Playwright's TimeoutError (imported lazily, see conftest): say what is missing
        return [f"{where}: no slider appeared under the cell"]
    handle = slider.locator(".noUi-handle").first
    problems = []
    before = figure_signature(cell)
    if not before:
        problems.append(f"{where}: no figure under the widget before moving the slider")

    # Each move goes towards the end with more room, so a slider at either end moves too.
    slider.scroll_into_view_if_needed()
    track = slider.locator(".noUi-target").first
    moves = {
        "by mouse": lambda: _drag(notebook.page, handle, track),
        "by keyboard": lambda: _press(handle, "ArrowRight" if _room_on_the_right(handle, track) else "ArrowLeft"),
    }
    for how, move in moves.items():
        value = _readout(slider)
        move()
        if not _changes(lambda: _readout(slider), value):
            problems.append(f"{where}: moving the slider {how} left its value at {value}")
            continue
        after = wait_for_redraw(notebook, cell, before, timeout)
        if after is None:
            problems.append(f"{where}: the figure did not redraw after moving the slider {how} to {_readout(slider)}")
        else:
            before = after
        if cell.get_by_text("Error displaying widget").count():
            problems.append(f"{where}: JupyterLab shows 'Error displaying widget' after moving the slider {how}")
        for text in notebook.stderr_outputs(index):
            problems.append(f"{where}: warning or error after moving the slider {how}: {text}")
        trouble = notebook.kernel_trouble()
        if trouble:
            problems.append(f"{where}: {trouble} after moving the slider {how}")
            break
    return list(dict.fromkeys(problems))


def _changes(read, old, seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while read() == old:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _press(handle, key: str) -> None:
    handle.focus()  # noUiSlider's handle takes the arrow keys, as a student's Tab would reach it
    handle.press(key)


def _room_on_the_right(handle, track) -> bool:
    knob, bar = handle.bounding_box(), track.bounding_box()
    return knob["x"] + knob["width"] / 2 < bar["x"] + bar["width"] / 2


def _drag(page, handle, track) -> None:
    """Drag the handle a third of the track's width, towards the end with more room."""
    knob, width = handle.bounding_box(), track.bounding_box()["width"]
    x, y = knob["x"] + knob["width"] / 2, knob["y"] + knob["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + (width if _room_on_the_right(handle, track) else -width) / 3, y, steps=8)
    page.mouse.up()


def check_animation(notebook: LabNotebook, index: int, seconds: float = 8.0, frames: int = 3) -> list[str]:
    """Press Play on the animation under cell ``index``; expect ``frames`` different images within ``seconds``."""
    where = f"{notebook.path} cell {index}"
    cell = notebook.cell(index)
    image = cell.locator(f'img[id^="{ANIMATION_MARK}"]').first
    play = cell.locator('button[title="Play"], button[aria-label="Play"]').first
    note = cell.locator(f'[id^="{ANIMATION_NOTE}"]').first
    try:  # JupyterLab renders a cell scrolled into view a moment later, and the player's script after it
        image.wait_for(state="attached", timeout=15_000)
        play.wait_for(state="attached", timeout=5_000)
    except PlaywrightTimeoutError:
        return [f"{where}: no animation player (image and Play button) under the cell"]
    try:
        note.wait_for(state="hidden", timeout=10_000)  # the script hides the "how to make it play" note
    except PlaywrightTimeoutError:
        return [f"{where}: the animation player's script did not run (its note is still shown)"]
    play.click()
    seen = {image.get_attribute("src")}
    deadline = time.monotonic() + seconds
    while len(seen) < frames and time.monotonic() < deadline:
        time.sleep(0.05)
        seen.add(image.get_attribute("src"))
    if len(seen) < frames:
        return [f"{where}: the animation showed {len(seen)} frame(s) in {seconds:.0f} s after Play, expected {frames}"]
    return []
