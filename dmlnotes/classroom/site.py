"""The course website (``make site``): every lesson as a page, from the committed notebooks.

Sphinx with MyST-NB renders the notebooks as they are committed (``nb_execution_mode =
"off"``: nothing runs, so the site builds in seconds per lesson and shows what the notebooks
measured). The front page is the course map, the sidebar groups the lessons by chapter of the
survey, the lesson plans of ``docs/plans/`` follow. The theme (sphinx-book-theme) bundles its
scripts, styles and fonts and MathJax comes from the ``sphinx-mathjax-offline`` package, so the
site works without a network; the build fails if any page or style sheet references the
internet. Animations are the notebooks' own HTML outputs and play in the page.

Usage::

    python -m dmlnotes.classroom.site [--out build/site]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from .course_map import CHAPTERS, ROOT, map_markdown, read_lessons
from .offline import report, scan_folder

CONF = """\
# Written by dmlnotes.classroom.site for each build.
project = "dmlnotes"
author = "the dmlnotes authors"
extensions = ["myst_nb", "sphinx-mathjax-offline"]  # the package's module name has hyphens
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
nb_execution_mode = "off"  # the committed outputs are the content: never run a lesson here
nb_ipywidgets_js = {}  # the lessons' widgets are saved as static figures; no widget JS from a CDN
html_theme = "sphinx_book_theme"
html_title = "dmlnotes: deep metric learning"
html_theme_options = {"show_toc_level": 2, "use_download_button": False, "use_fullscreen_button": False}
html_show_sourcelink = False
suppress_warnings = ["mystnb.unknown_mime_type", "myst.header"]
"""


def front_page(lessons) -> str:
    """index.md: the course map, then one table of contents per chapter (the sidebar's sections)."""
    notation = (ROOT / "docs" / "notation.md").read_text(encoding="utf-8")
    lines = [
        "# dmlnotes: deep metric learning, one runnable lesson at a time",
        "",
        "A course of Jupyter notebooks following LIU Bing, LI Ruilin, FENG Jufu, "
        '"A brief introduction to deep metric learning" (2019), chapter by chapter. '
        "These pages show the lessons as committed, with their outputs; to run them, clone the repository "
        "and run `make lab`.",
        "",
        "## The course map",
        "",
        map_markdown(lessons, notation),
        "",
    ]
    for chapter in CHAPTERS:
        members = [lesson for lesson in lessons if lesson.chapter == chapter.key]
        if members:
            lines += ["```{toctree}", ":hidden:", f":caption: {chapter.title} ({chapter.survey})", ""]
            lines += [f"notebooks/{lesson.path.stem}" for lesson in members]
            lines += ["```", ""]
    lines += ["```{toctree}", ":hidden:", ":caption: Lesson plans", ""]
    lines += [f"docs/plans/{Path(chapter.plan).stem}" for chapter in CHAPTERS if chapter.plan]
    lines += ["```", ""]
    return "\n".join(lines)


def stage(source: Path) -> list:
    """Lay out Sphinx's source folder: the front page, the notebooks, the plans, the map's picture."""
    if source.exists():
        shutil.rmtree(source)
    lessons = read_lessons(ROOT / "notebooks")
    (source / "notebooks").mkdir(parents=True)
    for lesson in lessons:
        shutil.copy2(lesson.path, source / "notebooks" / lesson.path.name)
    shutil.copytree(ROOT / "docs" / "plans", source / "docs" / "plans")
    shutil.copy2(ROOT / "docs" / "course_map.svg", source / "docs" / "course_map.svg")
    (source / "index.md").write_text(front_page(lessons), encoding="utf-8")
    (source / "conf.py").write_text(CONF, encoding="utf-8")
    return lessons


def build(out: Path, source: Path) -> list[Path]:
    """Build the site into ``out``; return the lesson pages. Fails on a Sphinx error or an external reference."""
    from sphinx.cmd.build import build_main

    lessons = stage(source)
    if build_main(["-b", "html", "-q", "-d", str(source / ".doctrees"), str(source), str(out)]) != 0:
        raise SystemExit("sphinx-build failed (its messages are above)")
    pages = [out / "notebooks" / f"{lesson.path.stem}.html" for lesson in lessons]
    missing = [str(page) for page in pages if not page.exists()]
    if missing:
        raise SystemExit(f"the site has no page for: {', '.join(missing)}")
    found = scan_folder(out)
    if found:
        raise SystemExit(f"the site would load from the internet:\n{report(found, out)}")
    return pages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "site")
    parser.add_argument("--source", type=Path, default=ROOT / "build" / "site-source", help="staging folder")
    args = parser.parse_args(argv)
    pages = build(args.out, args.source)
    print(f"{len(pages)} lessons in {args.out}; open {args.out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
