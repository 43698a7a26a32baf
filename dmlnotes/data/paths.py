"""Where data lives: the repository's ``data/`` folder, or ``$DMLNOTES_DATA``."""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV_VAR = "DMLNOTES_DATA"


def data_root() -> Path:
    """The data folder: ``$DMLNOTES_DATA`` if set, else ``data/`` at the top of the
    repository (next to ``dmlnotes/``), else ``./data``."""
    if os.environ.get(DATA_ENV_VAR):
        return Path(os.environ[DATA_ENV_VAR]).expanduser()
    repository_data = Path(__file__).resolve().parents[2] / "data"
    return repository_data if repository_data.is_dir() else Path("data").resolve()


class DatasetNotFoundError(FileNotFoundError):
    """A real data set is not where it was expected; the message says how to get it."""
