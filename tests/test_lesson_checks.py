"""The checks that keep lessons honest: shown to fail on small generated notebooks."""

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from dmlnotes import lesson_checks
from dmlnotes.plots import offline_player


def notebook(markdown: str, printed: str = "", code: str = "print(results)", data: dict | None = None):
    cell = new_code_cell(code)
    if printed:
        cell.outputs.append(new_output("stream", name="stdout", text=printed))
    if data:
        cell.outputs.append(new_output("display_data", data=data))
    return new_notebook(cells=[new_markdown_cell(markdown), cell])


def numbers(nb) -> list[str]:
    return [p.kind for p in lesson_checks.unmeasured_numbers(nb)]


def test_a_typed_percentage_fails_unless_the_outputs_show_it():
    text = "Semi-hard mining reaches 77.5 % Recall@1."
    assert numbers(notebook(text)) == ["unmeasured percentage 77.5"]
    assert numbers(notebook(text, printed="R@1 %: 77.5")) == []
    assert numbers(notebook(text, printed="R@1 %: 77.51")) == ["unmeasured percentage 77.5"]  # a token, not a prefix


def test_each_end_of_a_range_must_be_measured():
    assert numbers(notebook("Seeds 0-2 reached 78-80 % on glyphs.", printed="78.0 79.1")) == [
        "unmeasured percentage 80"
    ]


def test_points_metric_values_times_and_steps_are_measured_looking():
    problems = numbers(
        notebook("The gap is about 15 points. It reached R@1 0.757. One run takes 6.5 s. It collapses after 120 steps.")
    )
    assert problems == [
        "unmeasured points 15",
        "unmeasured metric value 0.757",
        "unmeasured time 6.5",
        "unmeasured steps 120",
    ]


def test_a_step_count_may_be_a_setting_in_the_code():
    assert numbers(notebook("Train for 450 steps and compare.", code="fit(model, steps=450)")) == []
    assert numbers(notebook("It took 450 s.", code="fit(model, steps=450)")) == ["unmeasured time 450"]


def test_rendered_markdown_counts_as_output():
    rendered = {"text/markdown": "Semi-hard mining beats all triplets by **6.2** points.", "text/plain": "<Markdown>"}
    assert numbers(notebook("As measured above, the gap is 6.2 points.", data=rendered)) == []


def test_literature_values_are_marked_by_their_source():
    assert numbers(notebook("The survey's best Recall@1 is 61.6 % (survey, Table 1).")) == []
    assert numbers(notebook("Zhang et al. find peaks near 4-5 % of the range.")) == []
    assert numbers(notebook("Our best Recall@1 is 61.6 % on glyphs, like the survey.")) == [
        "unmeasured percentage 61.6"
    ]


def test_exercise_solutions_follow_the_same_rule():
    solution = "<details><summary>Solution</summary>\n\nIn our runs it reached 56 % Recall@1.\n</details>"
    assert numbers(notebook(solution)) == ["unmeasured percentage 56"]


def test_hand_computed_fractions_and_bounds_are_not_measurements():
    assert numbers(notebook("Recall@1 = 3/6 by hand; Recall@K is at most 100 %.")) == []


def test_numbers_inside_embedded_images_do_not_count_as_measured():
    html = {"text/html": '<img src="data:image/jpeg;base64,AB775CD80xyz">'}
    assert numbers(notebook("It reached 80 %.", data=html)) == ["unmeasured percentage 80"]


def test_outputs_that_load_from_the_internet_are_found():
    cases = [
        '<link rel="stylesheet" href="https://cdn.example.org/font.css">',
        '<script src="//cdn.example.org/require.js"></script>',
        "<style>@import url('https://fonts.example.org/css');</style>",
        '<img src="http://example.org/a.png">',
    ]
    for html in cases:
        problems = lesson_checks.external_resources(notebook("", data={"text/html": html}))
        assert [p.kind for p in problems] == ["external resource in text/html"], html
    local = '<img src="data:image/png;base64,AAAA"><a href="https://example.org">a link is fine</a>'
    assert lesson_checks.external_resources(notebook("", data={"text/html": local})) == []


def test_matplotlibs_animation_player_would_be_caught_and_ours_is_clean():
    from matplotlib import animation
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots()
    anim = animation.FuncAnimation(fig, lambda i: [], frames=2)
    raw = anim.to_jshtml()
    plt.close(fig)
    assert lesson_checks.external_resources(notebook("", data={"text/html": raw}))
    assert lesson_checks.external_resources(notebook("", data={"text/html": offline_player(raw)})) == []


def lesson(takeaway_lines: int = 3, figure: bool = True, goals_first: bool = False):
    takeaway = new_markdown_cell("# Lesson\n\n## Takeaway\n" + "".join(f"- line {i}\n" for i in range(takeaway_lines)))
    figure_cell = new_code_cell("plot()")
    if figure:
        figure_cell.outputs.append(new_output("display_data", data={"image/png": "iVBOR", "text/plain": "<Figure>"}))
    goals = new_markdown_cell("## Learning goals\n- a")
    rest = [
        new_markdown_cell("## Exercises\n1. x\n<details><summary>Solution</summary>y</details>"),
        new_markdown_cell("## Summary\n- s"),
        new_markdown_cell("## References\n- r"),
    ]
    cells = [goals, takeaway, figure_cell] if goals_first else [takeaway, figure_cell, goals]
    return new_notebook(cells=cells + rest)


def test_a_lesson_opens_with_its_takeaway_and_figure():
    assert lesson_checks.anatomy_problems(lesson()) == []
    assert "the takeaway has 2 listed lines, expected 3" in str(
        lesson_checks.anatomy_problems(lesson(takeaway_lines=2))
    )
    assert "no figure" in str(lesson_checks.anatomy_problems(lesson(figure=False)))
    assert "after the learning goals" in str(lesson_checks.anatomy_problems(lesson(goals_first=True)))
    bare = new_notebook(cells=[new_markdown_cell("# Lesson")])
    assert len(lesson_checks.anatomy_problems(bare)) == 6


def test_command_line_reports_and_fails(tmp_path, capsys):
    path = tmp_path / "99_bad.ipynb"
    nbformat.write(notebook("It reached 12.5 %."), path)
    assert lesson_checks.main([str(path)]) == 1
    assert "unmeasured percentage 12.5" in capsys.readouterr().out
