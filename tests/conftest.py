import pytest

from dmlnotes.parallel import WORKERS_ENV_VAR


@pytest.fixture(autouse=True)
def runs_in_this_process(monkeypatch):
    """Unit tests train tiny runs in the test's own process (starting workers costs more than
    the runs); tests/test_parallel.py asks for worker processes explicitly."""
    monkeypatch.setenv(WORKERS_ENV_VAR, "1")
