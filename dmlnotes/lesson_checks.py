"""Checks that keep the lessons honest, run over every committed notebook by ``make test``.

* :func:`unmeasured_numbers`: a number in prose must be a number the notebook measured. A
  markdown cell that states a measured-looking number (a percentage, points of a metric,
  a Recall@K/MAP@R/NMI value, a time, a count of steps) fails unless the same number
  appears in the notebook's outputs (for a step count, also in its code: a setting such as
  ``steps=300``), or its sentence marks it as a value from the literature. Results reach the reader through code
  output: a printed table, or Markdown rendered from the computed values.
* :func:`external_resources`: nothing a notebook shows may load a script, style, font or
  image from the internet, so lessons work in a classroom without a network.
* :func:`anatomy_problems`: each lesson opens with its takeaway (three short lines and the
  figure that carries them) before its learning goals, and has exercises with solutions, a
  summary and references.
* :func:`slide_problems`: every cell carries slide metadata (``metadata.slideshow.slide_type``),
  so the lesson presents as a slideshow; ``python -m dmlnotes.classroom.slide_types`` writes it.
* :func:`solution_cells`: every exercise solution is a cell of its own tagged ``solution``
  (and the exercises section's code is tagged ``solution`` or ``exercise``), so the
  students' versions (``make student``) hold no solution.
* :func:`kernel_metadata`: the kernel spec and language info are what JupyterLab saves, so
  opening and saving a lesson does not change the file.

A literature value is marked by naming its source in the same sentence (or table row):
"et al." (``Zhai & Wu ... et al.``), or a citation in parentheses with "survey", a year,
"literature" or "reported", as in ``61.6 % (survey, Table 1)``.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from .notebook_metadata import metadata_problems
from .solutions import solution_problems

_NUMBER = r"(\d+(?:\.\d+)?)"
# What a measurement looks like in prose; each pattern's groups are the numbers it states.
MEASURED_PATTERNS: dict[str, re.Pattern] = {
    "percentage": re.compile(rf"{_NUMBER}(?:\s*(?:-|–|to)\s*{_NUMBER})?\s*(?:\\?%|percent\b|per cent\b)"),
    "points": re.compile(rf"{_NUMBER}(?:\s*(?:-|–|to)\s*{_NUMBER})?\s*(?:percentage\s+)?points?\b"),
    "metric value": re.compile(
        rf"(?:R@\d+|Recall@\d+|MAP@R|NMI)\b[^\d\n.;]{{0,30}}?{_NUMBER}(?![\d/])(?:\s*(?:-|–|to)\s*{_NUMBER})?"
    ),
    "time": re.compile(
        rf"{_NUMBER}(?:\s*(?:-|–|to)\s*{_NUMBER})?\s*(?:s|sec|seconds?|ms|milliseconds?|min|minutes?|hours?|h)\b"
    ),
    "steps": re.compile(rf"{_NUMBER}(?:\s*(?:-|–|to)\s*{_NUMBER})?\s*(?:steps|iterations|epochs)\b"),
}
_LITERATURE = re.compile(
    r"et al\b|\([^()]*(?:\bsurvey\b|\b(?:19|20)\d\d\b|\bliterature\b|\breported\b|\bpaper\b)[^()]*\)", re.IGNORECASE
)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_MATH = re.compile(r"\$\$.*?\$\$|\$[^$\n]*\$", re.DOTALL)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z*(])|\n")


@dataclass(frozen=True)
class Problem:
    cell: int
    kind: str
    text: str

    def __str__(self) -> str:
        return f"cell {self.cell}: {self.kind}: {self.text}"


def _source(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


_DATA_URI = re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=\\\n]+")


def _output_text(notebook) -> str:
    """Everything the notebook's code cells printed or displayed as text (embedded images removed)."""
    parts = []
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []) if cell["cell_type"] == "code" else []:
            if "text" in output:
                parts.append(_source({"source": output["text"]}))
            for mime, value in output.get("data", {}).items():
                if mime.startswith("text/"):
                    parts.append(_DATA_URI.sub(" ", _source({"source": value})))
    return "\n".join(parts)


def _code_text(notebook) -> str:
    return "\n".join(_source(c) for c in notebook["cells"] if c["cell_type"] == "code")


def _appears(number: str, text: str) -> bool:
    return re.search(rf"(?<![\d.]){re.escape(number)}(?![\d])", text) is not None


def _trivial(kind: str, number: str) -> bool:
    # 0 % and 100 % are bounds ("at most 100 %"), not measurements.
    return kind in ("percentage", "metric value") and float(number) in (0.0, 100.0)


def unmeasured_numbers(notebook) -> list[Problem]:
    """Measured-looking numbers in markdown that neither the outputs show nor a citation marks."""
    outputs = _output_text(notebook)
    settings = outputs + "\n" + _code_text(notebook)  # a step count may be a setting in the code
    problems = []
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        text = _MATH.sub(lambda m: m.group(0).replace("\\%", "%"), _CODE_SPAN.sub(" ", _source(cell)))
        for sentence in _SENTENCE_END.split(text):
            if _LITERATURE.search(sentence):
                continue
            reported = set()  # one problem per number and sentence ("R@1 61.6 %" is one claim)
            for kind, pattern in MEASURED_PATTERNS.items():
                for match in pattern.finditer(sentence):
                    for number in filter(None, match.groups()):
                        evidence = settings if kind == "steps" else outputs
                        if number not in reported and not _trivial(kind, number) and not _appears(number, evidence):
                            reported.add(number)
                            problems.append(Problem(index, f"unmeasured {kind} {number}", sentence.strip()[:200]))
    return problems


_EXTERNAL = [
    re.compile(
        r"<(?:script|link|img|iframe|source|video|audio|embed|object|track)\b[^>]*?\b(?:src|href|data|srcset)\s*=\s*[\"']?\s*(?:https?:)?//",
        re.IGNORECASE,
    ),
    re.compile(r"@import\s+(?:url\()?\s*[\"']?\s*(?:https?:)?//", re.IGNORECASE),
    re.compile(r"url\(\s*[\"']?\s*(?:https?:)?//", re.IGNORECASE),
    re.compile(r"!\[[^\]]*\]\(\s*(?:https?:)?//"),  # a Markdown image
    re.compile(r"\brequire(?:js)?\.config\b|\bimport\s*\(\s*[\"'](?:https?:)?//"),
]


def external_resources(notebook) -> list[Problem]:
    """Outputs that would load a script, style, font or image from another host."""
    problems = []
    for index, cell in enumerate(notebook["cells"]):
        for output in cell.get("outputs", []):
            for mime, value in output.get("data", {}).items():
                if not isinstance(value, (str, list)) or mime.startswith("image/png") or mime.startswith("image/jpeg"):
                    continue
                text = _source({"source": value})
                match = next(filter(None, (pattern.search(text) for pattern in _EXTERNAL)), None)
                if match:
                    context = text[match.start() : match.end() + 60].replace("\n", " ")
                    problems.append(Problem(index, f"external resource in {mime}", context))
    return problems


def _has_image(cell) -> bool:
    return any(
        any(mime.startswith("image/") or mime == "text/html" for mime in output.get("data", {}))
        for output in cell.get("outputs", [])
    )


def anatomy_problems(notebook) -> list[Problem]:
    """The lesson's shape: takeaway (3+ lines and a figure) before the goals; exercises with
    solutions, a summary and references."""
    cells = notebook["cells"]
    markdown = [(i, _source(c)) for i, c in enumerate(cells) if c["cell_type"] == "markdown"]
    problems = []

    def first(pattern: str) -> int | None:
        return next((i for i, text in markdown if re.search(pattern, text, re.IGNORECASE | re.MULTILINE)), None)

    takeaway, goals = first(r"^#+\s*Takeaway"), first(r"^#+\s*(?:Learning )?goals")
    if takeaway is None:
        problems.append(Problem(0, "anatomy", "no '## Takeaway' heading"))
    if goals is None:
        problems.append(Problem(0, "anatomy", "no '## Learning goals' heading"))
    if takeaway is not None and goals is not None:
        if takeaway > goals:
            problems.append(Problem(takeaway, "anatomy", "the takeaway comes after the learning goals"))
        between = cells[takeaway:goals]
        lines = sum(
            len(re.findall(r"^\s*(?:[-*]|\d+\.)\s+\S", _source(c), re.MULTILINE))
            + sum(
                len(
                    re.findall(
                        r"^\s*(?:[-*]|\d+\.)\s+\S",
                        _source({"source": o.get("data", {}).get("text/markdown", "")}),
                        re.MULTILINE,
                    )
                )
                for o in c.get("outputs", [])
            )
            for c in between
        )
        if lines < 3:
            problems.append(Problem(takeaway, "anatomy", f"the takeaway has {lines} listed lines, expected 3"))
        if not any(c["cell_type"] == "code" and _has_image(c) for c in between):
            problems.append(Problem(takeaway, "anatomy", "no figure generated between the takeaway and the goals"))
    for pattern, what in [
        (r"^#+\s*Exercises", "exercises"),
        (r"^#+\s*Summary", "summary"),
        (r"^#+\s*References", "references"),
    ]:
        if first(pattern) is None:
            problems.append(Problem(0, "anatomy", f"no {what} section"))
    if first(r"<details>\s*<summary>\s*Solution") is None:
        problems.append(Problem(0, "anatomy", "no collapsible solution (<details><summary>Solution</summary>)"))
    return problems


def slide_problems(notebook) -> list[Problem]:
    """Cells without a valid slide type, and a first cell that does not open a slide."""
    from .classroom.slide_types import SLIDE_TYPES, missing_slide_metadata

    hint = "run python -m dmlnotes.classroom.slide_types on the notebook"
    problems = [
        Problem(i, "slides", f"no slideshow.slide_type in {SLIDE_TYPES}; {hint}")
        for i in missing_slide_metadata(notebook)
    ]
    cells = notebook["cells"]
    if cells and not problems and cells[0]["metadata"]["slideshow"]["slide_type"] != "slide":
        problems.append(Problem(0, "slides", "the title cell does not open a slide"))
    return problems


def solution_cells(notebook) -> list[Problem]:
    """Solutions that are not a cell of their own tagged ``solution`` (``make student`` removes those)."""
    return [Problem(index, "solution", text) for index, text in solution_problems(notebook)]


def kernel_metadata(notebook) -> list[Problem]:
    """Kernel metadata other than JupyterLab saves: opening the lesson would change the file."""
    return [Problem(0, "kernel metadata", text) for text in metadata_problems(notebook)]


def check(path: Path) -> list[Problem]:
    notebook = json.loads(Path(path).read_text(encoding="utf-8"))
    return (
        unmeasured_numbers(notebook)
        + external_resources(notebook)
        + anatomy_problems(notebook)
        + slide_problems(notebook)
        + solution_cells(notebook)
        + kernel_metadata(notebook)
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m dmlnotes.lesson_checks notebooks/*.ipynb``: print every problem; exit 1 if any."""
    paths = [Path(p) for p in (argv if argv is not None else sys.argv[1:])]
    if not paths:
        paths = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    failed = False
    for path in paths:
        for problem in check(path):
            failed = True
            print(f"{path.name}: {problem}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
