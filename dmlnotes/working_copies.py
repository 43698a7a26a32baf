"""Students' own copies of the lessons, so the committed notebooks stay as they are.

``make lab`` opens JupyterLab on ``my-notebooks/`` (git-ignored), not on ``notebooks/``:
JupyterLab saves every two minutes, and a saved lesson under ``notebooks/`` would make the
next ``git pull`` conflict. Each time, lessons that are new in ``notebooks/`` (after a
``git pull``) are copied in; a copy that exists is never overwritten. ``refresh`` replaces
one copy with the committed lesson and keeps the old copy in ``my-notebooks/backups/``::

    python -m dmlnotes.working_copies sync
    python -m dmlnotes.working_copies refresh 03        # or 03_triplet_loss_and_mining.ipynb

The copies find the package and the data caches wherever they are: the kernel imports
the installed ``dmlnotes``, whose data folder is the repository's ``data/``
(:func:`dmlnotes.data.data_root`), not one relative to the notebook.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
LESSONS = REPOSITORY / "notebooks"
COPIES = REPOSITORY / "my-notebooks"
BACKUPS = "backups"


def lessons(source: Path = LESSONS) -> list[Path]:
    return sorted(source.glob("[0-9][0-9]_*.ipynb"))


def sync(source: Path = LESSONS, copies: Path = COPIES) -> list[Path]:
    """Copy the lessons that have no copy yet; return the new copies. Existing copies stay as they are."""
    copies.mkdir(parents=True, exist_ok=True)
    new = []
    for lesson in lessons(source):
        copy = copies / lesson.name
        if not copy.exists():
            shutil.copyfile(lesson, copy)
            new.append(copy)
    return new


def find_lesson(name: str, source: Path = LESSONS) -> Path:
    """The lesson ``name`` names: a file name, a path, or its number ("03")."""
    stem = Path(name).name
    matches = [p for p in lessons(source) if p.name == stem or p.stem == stem or p.name.startswith(f"{stem}_")]
    if len(matches) != 1:
        known = ", ".join(p.name for p in lessons(source))
        raise SystemExit(f"no single lesson matches {name!r}; the lessons are: {known}")
    return matches[0]


def refresh(name: str, source: Path = LESSONS, copies: Path = COPIES) -> tuple[Path, Path | None]:
    """Replace the copy of a lesson by the committed one; return (copy, backup of the old copy or None)."""
    lesson = find_lesson(name, source)
    copy = copies / lesson.name
    backup = None
    if copy.exists():
        backup = copies / BACKUPS / f"{lesson.stem}.{time.strftime('%Y%m%d-%H%M%S')}.ipynb"
        backup.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(copy, backup)
    copies.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(lesson, copy)
    return copy, backup


def _shown(path: Path) -> str:
    return str(path.relative_to(REPOSITORY)) if path.is_relative_to(REPOSITORY) else str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["sync", "refresh"])
    parser.add_argument("lesson", nargs="?", help="refresh: the lesson's file name or number")
    parser.add_argument("--copies", type=Path, default=COPIES, help="folder of the working copies")
    args = parser.parse_args(argv)
    if args.command == "sync":
        new = sync(copies=args.copies)
        kept = len(lessons()) - len(new)
        print(f"your copies of the lessons: {_shown(args.copies)}/ ({len(new)} new, {kept} kept as you left them)")
        return 0
    if not args.lesson:
        parser.error("refresh needs a lesson, e.g. refresh 03 (make refresh NB=03)")
    copy, backup = refresh(args.lesson, copies=args.copies)
    saved = f"; your old copy is {_shown(backup)}" if backup else ""
    print(f"{_shown(copy)} is the committed lesson again{saved}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
