import pytest

from dmlnotes.parallel import WORKERS_ENV_VAR

# The real-browser tests need Chromium and take minutes: `make test-browser` runs them
# (`pytest tests/browser`); `make test` and a bare `pytest` leave them out.
collect_ignore = ["browser"]


@pytest.fixture(autouse=True)
def runs_in_this_process(monkeypatch):
    """Unit tests train tiny runs in the test's own process (starting workers costs more than
    the runs); tests/test_parallel.py asks for worker processes explicitly."""
    monkeypatch.setenv(WORKERS_ENV_VAR, "1")
