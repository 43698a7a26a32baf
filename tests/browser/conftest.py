"""Fixtures of the real-browser tests (``make test-browser``): a JupyterLab server on a
trusted copy of the notebooks, headless Chromium driven by Playwright, and a page that
may only talk to that server.

``make test`` does not collect this folder (``tests/conftest.py``); these tests need
Chromium and take minutes.
"""

from __future__ import annotations

import os
import shutil
import time
from urllib.parse import urlsplit

import pytest
from browser.lab_server import LabServer, copy_notebooks
from browser.widget_check import BROKEN_WIDGETS, LESSONS

CHROMIUM_ENV_VAR = "DMLNOTES_CHROMIUM"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # as root (containers, CI), Chromium refuses to start with its sandbox
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}

blocked_requests: list[str] = []  # every request to anywhere but the local server, across the session


def chromium_path() -> str:
    path = os.environ.get(CHROMIUM_ENV_VAR) or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail(
            "Chromium not found. Install it (Debian/Ubuntu: apt-get install chromium) "
            f"or set {CHROMIUM_ENV_VAR} to its executable; the browser tests never download one.",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory):
    scratch = tmp_path_factory.mktemp("jupyterlab")
    # The kernel imports dmlnotes from this repository, whose results/comparison/ and data/
    # (glyphs) it finds next to the package: the copies read the same runs as the lessons.
    copies = copy_notebooks([*LESSONS, BROKEN_WIDGETS], scratch / "notebooks")
    server = LabServer(scratch / "notebooks", scratch)
    server.trust(copies)  # saved animations play only in a trusted notebook
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def chromium():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is missing: `make test-browser` installs it (the extra `browser`)", pytrace=False)
    executable = chromium_path()
    with sync_playwright() as playwright:
        # Playwright gives each launch a fresh temporary profile (user data dir).
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


def _only_local(route) -> None:
    if urlsplit(route.request.url).hostname in LOCAL_HOSTS:
        route.continue_()
    else:
        blocked_requests.append(route.request.url)
        route.abort()


@pytest.fixture
def page(chromium, lab_server):
    """A fresh browser context on the lab; requests elsewhere are aborted (and recorded), so the
    lessons are shown to work offline. Uncaught JavaScript errors fail the test; kernels are
    shut down afterwards."""
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    context.route("**/*", _only_local)
    page = context.new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    page.set_default_timeout(60_000)
    yield page
    context.close()
    lab_server.shut_down_kernels()
    time.sleep(0.5)  # let the kernels' processes exit before the next notebook starts its own
    assert not page_errors, f"uncaught JavaScript errors in the page: {page_errors}"


def pytest_terminal_summary(terminalreporter):
    if blocked_requests:
        terminalreporter.section("requests blocked (not to the local JupyterLab)")
        for url in dict.fromkeys(blocked_requests):
            terminalreporter.write_line(f"{blocked_requests.count(url)} x {url}")
    else:
        terminalreporter.write_line("browser tests: no request left the local JupyterLab server")
