"""The site's front page and source folder, without running Sphinx (that is test_site_build.py)."""

import re

from dmlnotes.classroom import course_map, site


def test_the_front_page_is_the_map_with_the_lessons_by_chapter_and_the_plans(tmp_path):
    lessons = site.stage(tmp_path)
    front = (tmp_path / "index.md").read_text(encoding="utf-8")
    assert "## The course map" in front and "![Which lessons build on which](docs/course_map.svg)" in front
    toctrees = re.findall(r"```\{toctree\}\n:hidden:\n:caption: ([^\n]+)\n\n(.*?)```", front, re.DOTALL)
    listed = {caption: entries.split() for caption, entries in toctrees}
    for chapter in course_map.CHAPTERS:
        members = [f"notebooks/{lesson.path.stem}" for lesson in lessons if lesson.chapter == chapter.key]
        if members:
            assert listed[f"{chapter.title} ({chapter.survey})"] == members
    assert len(listed["Lesson plans"]) == sum(1 for chapter in course_map.CHAPTERS if chapter.plan)
    for lesson in lessons:
        assert (tmp_path / "notebooks" / lesson.path.name).is_file()
    assert 'nb_execution_mode = "off"' in (tmp_path / "conf.py").read_text()
