import json

import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from dmlnotes.classroom import slide_types


def figure_cell(code="plot()"):
    cell = new_code_cell(code)
    cell.outputs.append(new_output("display_data", data={"image/png": "iVBOR", "text/plain": "<Figure>"}))
    return cell


def printing_cell(code, text="ok\n"):
    cell = new_code_cell(code)
    cell.outputs.append(new_output("stream", name="stdout", text=text))
    return cell


def lesson():
    return new_notebook(
        cells=[
            new_markdown_cell("# 99 · A lesson\n\nWhy it matters."),
            new_markdown_cell("## Takeaway\n\n- one\n- two\n- three"),
            figure_cell(),
            new_markdown_cell("## Setup"),
            printing_cell("import torch\nprint('cpu')"),
            new_markdown_cell("## 1. The loss: eq. (1)\n\n$$\\ell = d^2$$"),
            new_markdown_cell("### The loss from scratch"),
            printing_cell("def loss(x):\n    return x\nassert loss(1) == 1\nprint('ok')"),
            new_code_cell("def helper():\n    pass"),
            figure_cell(),
            new_markdown_cell("The figure shows the pull."),
            printing_cell("print(table)"),
            new_markdown_cell("## Exercises\n\n1. First."),
            new_markdown_cell("2. Second.\n\n<details><summary>Solution</summary>...</details>"),
            new_markdown_cell("## Summary\n\n- it works"),
        ]
    )


def test_the_rules_follow_the_lesson_anatomy():
    assert slide_types.slide_types(lesson()) == [
        "slide",  # title
        "slide",  # takeaway
        "-",  # its figure stays on the takeaway slide
        "skip",  # setup heading
        "skip",  # setup code, even with output
        "slide",  # the equation
        "subslide",  # ### heading
        "fragment",  # a check that prints
        "skip",  # a definition without output
        "-",  # a figure continues the slide
        "subslide",  # the reading of a figure starts afresh
        "-",
        "slide",  # exercises
        "subslide",  # one exercise per subslide
        "slide",  # summary
    ]


def test_a_solution_is_the_lecturers_note():
    notebook = lesson()
    notebook.cells[13].metadata["tags"] = ["solution"]
    assert slide_types.slide_types(notebook)[13] == "notes"


def test_an_override_in_the_cell_wins_and_a_wrong_one_is_refused():
    notebook = lesson()
    notebook.cells[4].metadata["dmlnotes"] = {"slide_type": "fragment"}
    assert slide_types.slide_types(notebook)[4] == "fragment"
    notebook.cells[4].metadata["dmlnotes"] = {"slide_type": "sub-slide"}
    with pytest.raises(ValueError, match="sub-slide.*expected one of"):
        slide_types.slide_types(notebook)


def test_assign_writes_metadata_once_and_the_check_finds_stale_notebooks(tmp_path, capsys):
    path = tmp_path / "99_lesson.ipynb"
    path.write_text(json.dumps(lesson()), encoding="utf-8")
    assert slide_types.main(["--check", str(path)]) == 1
    assert "out of date" in capsys.readouterr().out

    assert slide_types.main([str(path)]) == 0
    written = json.loads(path.read_text(encoding="utf-8"))
    assert slide_types.missing_slide_metadata(written) == []
    assert written["cells"][0]["metadata"]["slideshow"] == {"slide_type": "slide"}
    assert written["metadata"]["rise"] == {"scroll": True}
    assert slide_types.main(["--check", str(path)]) == 0
    assert not slide_types.assign(written)  # nothing left to change
    written["metadata"]["rise"]["scroll"] = False  # the notebook's own choice stays
    assert not slide_types.assign(written) and written["metadata"]["rise"]["scroll"] is False


def test_missing_slide_metadata_names_the_cells():
    notebook = lesson()
    slide_types.assign(notebook)
    del notebook.cells[3].metadata["slideshow"]
    notebook.cells[5].metadata["slideshow"]["slide_type"] = "page"
    assert slide_types.missing_slide_metadata(notebook) == [3, 5]
