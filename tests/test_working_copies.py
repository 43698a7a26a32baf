"""make lab's working copies: new lessons come in, a student's copy is never overwritten without a backup."""

import os

import pytest

from dmlnotes import working_copies
from dmlnotes.data import data_root


def lessons_in(folder, *names):
    folder.mkdir(exist_ok=True)
    for name in names:
        (folder / name).write_text(f"committed {name}", encoding="utf-8")
    return folder


def test_sync_copies_new_lessons_and_leaves_existing_copies_alone(tmp_path):
    lessons = lessons_in(tmp_path / "notebooks", "00_intro.ipynb", "01_eval.ipynb", "notes.txt")
    copies = tmp_path / "my-notebooks"
    assert [p.name for p in working_copies.sync(lessons, copies)] == ["00_intro.ipynb", "01_eval.ipynb"]
    (copies / "00_intro.ipynb").write_text("my work", encoding="utf-8")
    lessons_in(lessons, "02_new.ipynb")  # a git pull brings a new lesson
    assert [p.name for p in working_copies.sync(lessons, copies)] == ["02_new.ipynb"]
    assert (copies / "00_intro.ipynb").read_text(encoding="utf-8") == "my work"


def test_refresh_keeps_a_backup_of_the_students_copy(tmp_path):
    lessons = lessons_in(tmp_path / "notebooks", "00_intro.ipynb", "01_eval.ipynb")
    copies = tmp_path / "my-notebooks"
    working_copies.sync(lessons, copies)
    (copies / "01_eval.ipynb").write_text("my work", encoding="utf-8")
    copy, backup = working_copies.refresh("01", lessons, copies)
    assert copy.read_text(encoding="utf-8") == "committed 01_eval.ipynb"
    assert backup.parent == copies / "backups" and backup.read_text(encoding="utf-8") == "my work"
    assert working_copies.refresh("00_intro.ipynb", lessons, copies)[1] is not None
    with pytest.raises(SystemExit, match="no single lesson matches '0'.*00_intro.ipynb, 01_eval.ipynb"):
        working_copies.refresh("0", lessons, copies)


def test_copies_find_the_repositorys_data_from_their_own_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("DMLNOTES_DATA", raising=False)
    expected = data_root()
    monkeypatch.chdir(tmp_path)  # a kernel started in my-notebooks/
    assert data_root() == expected == working_copies.REPOSITORY / "data"
    assert os.getcwd() == str(tmp_path)
