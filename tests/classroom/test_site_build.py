"""Builds the slides and the course website from the committed notebooks (`make test-site`:
tens of seconds, so not part of `make test`). reveal.js and MathJax must be in build/vendor
(`make test-site` fetches them first): the test itself downloads nothing."""

import re

import pytest

from dmlnotes.classroom import course_map, offline, site, slides

pytestmark = pytest.mark.site
LESSONS = course_map.read_lessons()


def test_the_slides_of_every_lesson_work_offline(tmp_path):
    notebooks = [lesson.path for lesson in LESSONS]
    pages = slides.build(notebooks, tmp_path, course_map.ROOT / "build" / "vendor", allow_fetch=False)
    assert [page.name for page in pages] == [f"{path.stem}.slides.html" for path in notebooks]
    assert offline.scan_folder(tmp_path) == {}
    for page in pages:
        html = page.read_text(encoding="utf-8")
        # everything the page loads is in the folder
        for reference in re.findall(r'<(?:script|link)[^>]*?(?:src|href)="([^"?#]+)', html):
            assert (tmp_path / reference).is_file(), f"{page.name} loads {reference}, which is missing"
        assert html.count("<section") >= 5, f"{page.name} has too few slides"
        assert "application/vnd.jupyter.widget-view+json" not in html  # widgets show their static figure
        committed = (course_map.ROOT / "notebooks" / page.name.replace(".slides.html", ".ipynb")).read_text("utf-8")
        assert html.count("new Animation(") == committed.count("new Animation(")  # the animations play


def test_the_site_has_every_lesson_the_map_and_no_external_reference(tmp_path):
    out = tmp_path / "site"
    pages = site.build(out, tmp_path / "source")
    assert [page.stem for page in pages] == [lesson.path.stem for lesson in LESSONS]
    assert offline.scan_folder(out) == {}
    front = (out / "index.html").read_text(encoding="utf-8")
    for lesson in LESSONS:
        assert f'href="notebooks/{lesson.path.stem}.html"' in front  # the map links every lesson
    assert "course_map.svg" in front
    for chapter in course_map.CHAPTERS:
        if chapter.plan:
            assert (out / "docs" / "plans" / chapter.plan.replace(".md", ".html")).is_file()
    # Every animation player of a notebook (matplotlib's, with its frames and script) is in its page.
    players = {
        lesson.number: (
            lesson.path.read_text(encoding="utf-8").count("new Animation("),
            (out / "notebooks" / f"{lesson.path.stem}.html").read_text(encoding="utf-8").count("new Animation("),
        )
        for lesson in LESSONS
    }
    assert sum(committed for committed, _ in players.values()) > 0
    assert all(committed == shown for committed, shown in players.values()), players
