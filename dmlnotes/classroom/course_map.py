"""The course map and the lesson plans' timings, generated from the notebooks' own metadata.

Each lesson carries a ``dmlnotes`` block in its notebook metadata (see :data:`REQUIRED`)::

    "dmlnotes": {
      "title": "The contrastive loss", "chapter": "pair-losses",
      "survey_section": "1.1", "equations": [1], "see_also": "Fig. 1",
      "builds_on": ["00", "01"], "teach_minutes": 45, "run_seconds": 12.8,
      "teaches": "three conventions of the contrastive loss, ..."
    }

``run_seconds`` is measured: ``make notebooks`` (``dmlnotes.notebook_runner execute``) writes
it whenever it executes a notebook. From these blocks the generator writes, between markers,

* the map section of ``README.md`` (also the front page of the course website): the lessons
  by chapter with their survey sections and equations, prerequisites, run and teaching
  times, the picture of prerequisites, and the notation and glossary of ``docs/notation.md``;
* ``docs/course_map.svg``, the prerequisites drawn with matplotlib;
* the timing table of each chapter's lesson plan in ``docs/plans/``.

Usage::

    python -m dmlnotes.classroom.course_map          # rewrite the generated parts (make map)
    python -m dmlnotes.classroom.course_map --check  # exit 1 if any is out of date
"""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Chapter:
    key: str
    title: str
    survey: str
    plan: str | None  # file name in docs/plans/, None for the foundations (no plan of their own)


# The order of the course. A lesson's metadata names its chapter by key.
CHAPTERS = (
    Chapter("foundations", "Foundations: distances and evaluation", "introduction", None),
    Chapter("pair-losses", "Pair losses", "survey 1.1-1.5", "pair_losses.md"),
    Chapter("clusters-and-proxies", "Clusters and proxies", "survey 1.6-1.9", "clusters_and_proxies.md"),
    Chapter("softmax-and-temperature", "Softmax and temperature", "survey 2", "softmax_and_temperature.md"),
    Chapter("margins-and-pair-weighting", "Margins and pair weighting", "survey 3 and after", "margins.md"),
    Chapter("benchmark-and-failures", "Benchmark and failures", "Musgrave et al. 2020", "benchmark.md"),
)
CHAPTER_KEYS = {chapter.key: chapter for chapter in CHAPTERS}

# key: (type, what it means); survey_section may be null (a lesson outside the survey), see_also optional.
REQUIRED = {
    "title": (str, "short title"),
    "chapter": (str, f"one of {', '.join(CHAPTER_KEYS)}"),
    "survey_section": ((str, type(None)), 'the survey section, e.g. "1.1", or null'),
    "equations": (list, "the survey's equation numbers, e.g. [5, 6]"),
    "builds_on": (list, 'the lessons it needs, e.g. ["02", "03"]'),
    "teach_minutes": (int, "minutes to teach it"),
    "run_seconds": ((int, float), "seconds to execute it (written by make notebooks)"),
    "teaches": (str, "one line: what it teaches"),
}


class MetadataError(ValueError):
    """A notebook's ``dmlnotes`` metadata block is missing or wrong."""


@dataclass(frozen=True)
class Lesson:
    number: str  # "02"
    path: Path
    title: str
    chapter: str
    survey_section: str | None
    equations: tuple[int, ...]
    see_also: str | None
    builds_on: tuple[str, ...]
    teach_minutes: int
    run_seconds: float
    teaches: str

    @property
    def survey(self) -> str:
        """'1.5, eqs. (5)-(6), Fig. 1' as the map shows it."""
        parts = [self.survey_section or "—"]
        if self.equations:
            parts.append(_equations(self.equations))
        if self.see_also:
            parts.append(self.see_also)
        return ", ".join(parts)


def _equations(numbers) -> str:
    numbers = sorted(numbers)
    if len(numbers) == 1:
        return f"eq. ({numbers[0]})"
    if numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"eqs. ({numbers[0]})-({numbers[-1]})"
    return "eqs. " + ", ".join(f"({n})" for n in numbers)


def _example() -> str:
    return json.dumps({key: f"<{what}>" for key, (_, what) in REQUIRED.items()}, indent=1)


def read_lesson(path: Path) -> Lesson:
    """The lesson's metadata block, checked; a :class:`MetadataError` names what is wrong."""
    path = Path(path)
    block = json.loads(path.read_text(encoding="utf-8")).get("metadata", {}).get("dmlnotes")
    if block is None:
        raise MetadataError(
            f"{path.name} has no 'dmlnotes' block in its notebook metadata; the course map needs one like\n"
            f'"dmlnotes": {_example()}\n(see dmlnotes/classroom/course_map.py)'
        )
    problems = [f"'{key}' is missing ({what})" for key, (_, what) in REQUIRED.items() if key not in block]
    problems += [
        f"'{key}' is {block[key]!r}, expected {what}"
        for key, (kind, what) in REQUIRED.items()
        if key in block and (not isinstance(block[key], kind) or isinstance(block[key], bool))
    ]
    if not problems and block["chapter"] not in CHAPTER_KEYS:
        problems.append(f"'chapter' is {block['chapter']!r}, expected one of {', '.join(CHAPTER_KEYS)}")
    if problems:
        raise MetadataError(f"{path.name}: metadata 'dmlnotes': " + "; ".join(problems))
    return Lesson(
        number=path.name[:2],
        path=path,
        title=block["title"],
        chapter=block["chapter"],
        survey_section=block["survey_section"],
        equations=tuple(block["equations"]),
        see_also=block.get("see_also"),
        builds_on=tuple(block["builds_on"]),
        teach_minutes=block["teach_minutes"],
        run_seconds=float(block["run_seconds"]),
        teaches=block["teaches"],
    )


def read_lessons(notebook_dir: Path = ROOT / "notebooks") -> list[Lesson]:
    lessons = [read_lesson(path) for path in sorted(Path(notebook_dir).glob("[0-9][0-9]_*.ipynb"))]
    numbers = {lesson.number for lesson in lessons}
    for lesson in lessons:
        unknown = [n for n in lesson.builds_on if n not in numbers or n >= lesson.number]
        if unknown:
            raise MetadataError(
                f"{lesson.path.name}: 'builds_on' names {', '.join(unknown)}, not an earlier lesson of {notebook_dir}"
            )
    return lessons


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def map_markdown(lessons: list[Lesson], notation: str) -> str:
    """The map: lessons by chapter, the picture, then the notation and glossary."""
    lines = [
        "Each lesson covers a section of the survey and builds on earlier ones (arrows: lesson A is needed for B).",
        "*run* is the time `make notebooks` measured to execute the lesson on a 2-core CPU; "
        "*teach* is the time to present it in a lecture.",
        "",
        "![Which lessons build on which](docs/course_map.svg)",
        "",
    ]
    for chapter in CHAPTERS:
        members = [lesson for lesson in lessons if lesson.chapter == chapter.key]
        plan = f" · [lesson plan](docs/plans/{chapter.plan})" if chapter.plan else ""
        lines.append(f"**{chapter.title}** ({chapter.survey}){plan}")
        lines.append("")
        if not members:
            lines += ["*To come.*", ""]
            continue
        lines += [
            "| lesson | survey | builds on | run | teach | what it teaches |",
            "|---|---|---|---|---|---|",
        ]
        for lesson in members:
            lines.append(
                f"| [{lesson.number} {lesson.title}](notebooks/{lesson.path.name}) | {lesson.survey} "
                f"| {', '.join(lesson.builds_on) or '—'} | {_minutes(lesson.run_seconds)} "
                f"| {lesson.teach_minutes} min | {lesson.teaches} |"
            )
        lines.append("")
    total_run = sum(lesson.run_seconds for lesson in lessons)
    total_teach = sum(lesson.teach_minutes for lesson in lessons)
    lines += [
        f"All {len(lessons)} lessons: {_minutes(total_run)} to run, {total_teach / 60:.1f} h to teach.",
        "",
        notation.strip(),
    ]
    return "\n".join(lines)


def plan_timing_markdown(lessons: list[Lesson], chapter_key: str) -> str:
    """A plan's table of its lessons' measured run times and teaching times."""
    members = [lesson for lesson in lessons if lesson.chapter == chapter_key]
    if not members:
        return "*The lessons of this chapter are not written yet; their times appear here once they are.*"
    lines = ["| lesson | run (measured) | teach |", "|---|---|---|"]
    lines += [
        f"| {lesson.number} {lesson.title} | {_minutes(lesson.run_seconds)} | {lesson.teach_minutes} min |"
        for lesson in members
    ]
    run = sum(lesson.run_seconds for lesson in members)
    teach = sum(lesson.teach_minutes for lesson in members)
    lines.append(f"| all | {_minutes(run)} | {teach} min |")
    return "\n".join(lines)


def map_svg(lessons: list[Lesson], preview: Path | None = None) -> str:
    """The prerequisites as an SVG: one column per chapter, an arrow from each lesson to those
    that build on it. Deterministic (fixed ids, no date) so the committed file only changes
    when the lessons do. ``preview``: also save a PNG there, to look at."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = [chapter for chapter in CHAPTERS if any(lesson.chapter == chapter.key for lesson in lessons)]
    rows = max(sum(lesson.chapter == chapter.key for lesson in lessons) for chapter in columns)
    position = {}
    for x, chapter in enumerate(columns):
        members = [lesson for lesson in lessons if lesson.chapter == chapter.key]
        for y, lesson in enumerate(members):
            position[lesson.number] = (x, -y)
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": "dmlnotes-course-map", "font.size": 10}):
        fig, ax = plt.subplots(figsize=(3.1 * len(columns), 0.8 * rows + 0.9))
        box = {"boxstyle": "round,pad=0.35", "facecolor": "#eef3fb", "edgecolor": "#4c72b0"}
        for x, chapter in enumerate(columns):
            ax.text(x, 0.75, chapter.title.split(":")[0], ha="center", va="bottom", fontweight="bold")
        labels = {}
        for lesson in lessons:
            x, y = position[lesson.number]
            labels[lesson.number] = ax.text(
                x, y, f"{lesson.number} {_short(lesson.title)}", ha="center", va="center", bbox=box
            )
        fig.canvas.draw()  # lays out the boxes, so the arrows can end at their edges (boxes draw first)
        for lesson in lessons:
            for needed in lesson.builds_on:
                (x0, y0), (x1, y1) = position[needed], position[lesson.number]
                # Bow out past the boxes between: a lot within a column, less across a skipped column.
                bend = 0.5 if x0 == x1 else 0.25 if x1 - x0 > 1 else 0.15 if y0 != y1 else 0.0
                ax.annotate(
                    "",
                    xy=(x1, y1),
                    xytext=(x0, y0),
                    arrowprops={
                        "arrowstyle": "-|>",
                        "connectionstyle": f"arc3,rad={bend}",
                        "patchA": labels[needed].get_bbox_patch(),
                        "patchB": labels[lesson.number].get_bbox_patch(),
                        "color": "#777777",
                        "linewidth": 0.8,
                        "shrinkA": 2,
                        "shrinkB": 4,
                    },
                )
        ax.set_xlim(-0.6, len(columns) - 0.4)
        ax.set_ylim(-rows + 0.4, 1.2)
        ax.axis("off")
        out = io.StringIO()
        fig.savefig(out, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
        if preview:
            fig.savefig(preview, dpi=100, bbox_inches="tight")
        plt.close(fig)
    return out.getvalue()


def _short(title: str, width: int = 30) -> str:
    """The box label: the title up to its first colon or parenthesis, at most ``width`` characters."""
    short = re.split(r"[:(]", title)[0].strip()
    return short if len(short) <= width else short[: width - 1].rstrip() + "…"


def replace_between_markers(text: str, name: str, content: str, where: str = "") -> str:
    """``text`` with the part between ``<!-- BEGIN name -->`` and ``<!-- END name -->`` replaced."""
    begin, end = f"<!-- BEGIN {name} (generated by make map; do not edit) -->", f"<!-- END {name} -->"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(text):
        raise MetadataError(f"{where or 'the text'} has no '{begin}' ... '{end}' markers")
    return pattern.sub(lambda _: f"{begin}\n{content}\n{end}", text, count=1)


def generated_files(root: Path = ROOT, picture: bool = True) -> dict[Path, str]:
    """Every file the generator writes, with the content it should have (the SVG only with ``picture``)."""
    lessons = read_lessons(root / "notebooks")
    notation = (root / "docs" / "notation.md").read_text(encoding="utf-8")
    readme = root / "README.md"
    files = {
        readme: replace_between_markers(
            readme.read_text(encoding="utf-8"), "course map", map_markdown(lessons, notation), "README.md"
        ),
    }
    if picture:
        files[root / "docs" / "course_map.svg"] = map_svg(lessons)
    for chapter in CHAPTERS:
        if chapter.plan:
            plan = root / "docs" / "plans" / chapter.plan
            files[plan] = replace_between_markers(
                plan.read_text(encoding="utf-8"), "timings", plan_timing_markdown(lessons, chapter.key), str(plan)
            )
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a generated part is stale")
    args = parser.parse_args(argv)
    try:
        files = generated_files()
    except MetadataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    stale = [path for path, content in files.items() if not path.exists() or path.read_text("utf-8") != content]
    for path in stale:
        if args.check:
            print(f"{path.relative_to(ROOT)} is out of date: run `make map`")
        else:
            path.write_text(files[path], encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
