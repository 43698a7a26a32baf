"""Find what a built page would load from the internet: a classroom may have no network.

:func:`external_references` scans HTML and CSS text for an http(s) (or protocol-relative)
address in a script's ``src``, a stylesheet link's ``href``, an ``@import``, or a CSS ``url()``
(which covers ``@font-face`` sources); :func:`scan_folder` scans every .html and .css file
of a built site or slide deck. Plain links (``<a href>``) are fine: they load nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

_REMOTE = r"[\"']?\s*(?:https?:)?//"
PATTERNS = {
    "script": re.compile(rf"<script\b[^>]*?\bsrc\s*=\s*{_REMOTE}[^\"'\s>]*", re.IGNORECASE),
    "stylesheet": re.compile(
        rf"<link\b(?=[^>]*\brel\s*=\s*[\"']?(?:stylesheet|preload|modulepreload)\b)[^>]*?\bhref\s*=\s*{_REMOTE}[^\"'\s>]*",
        re.IGNORECASE,
    ),
    "@import": re.compile(rf"@import\s+(?:url\(\s*)?{_REMOTE}[^\"'\s)]*", re.IGNORECASE),
    "url()": re.compile(rf"\burl\(\s*{_REMOTE}[^\"'\s)]*", re.IGNORECASE),
    "module import": re.compile(rf"\bimport\b[^;\n]*?\bfrom\s*{_REMOTE}[^\"'\s]*|\bimport\s*\(\s*{_REMOTE}[^\"'\s)]*"),
}


def external_references(text: str) -> list[tuple[str, str]]:
    """(kind, the matched text) for every external reference in ``text``."""
    return [(kind, match.group(0)) for kind, pattern in PATTERNS.items() for match in pattern.finditer(text)]


def scan_folder(folder: Path) -> dict[Path, list[tuple[str, str]]]:
    """External references of every .html and .css file under ``folder``, by file (only files that have some)."""
    found = {}
    for path in sorted(Path(folder).rglob("*")):
        if path.suffix in (".html", ".css") and path.is_file():
            references = external_references(path.read_text(encoding="utf-8", errors="replace"))
            if references:
                found[path] = references
    return found


def report(found: dict[Path, list[tuple[str, str]]], root: Path) -> str:
    lines = []
    for path, references in found.items():
        for kind, text in references[:5]:
            lines.append(f"{path.relative_to(root)}: {kind}: {text[:120]}")
        if len(references) > 5:
            lines.append(f"{path.relative_to(root)}: ... and {len(references) - 5} more")
    return "\n".join(lines)
