"""A JupyterLab server for the browser tests: on a trusted temporary copy of the notebooks,
on a free local port with a known token, isolated from the user's Jupyter settings, and
stopped (with its kernels) at the end."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LabServer:
    """``jupyter lab`` serving ``root``; ``url(path)`` adds the token, ``api`` calls its REST API."""

    def __init__(self, root: Path, scratch: Path):
        self.root = root
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = scratch / "jupyterlab.log"
        # Own config, data and runtime folders: the user's settings, extensions' state and
        # notebook signatures stay out of the test, and the test's stay out of the user's home.
        self.environment = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(scratch / "config"),
            "JUPYTER_DATA_DIR": str(scratch / "data"),
            "JUPYTER_RUNTIME_DIR": str(scratch / "runtime"),
            "DMLNOTES_PROGRESS": "0",  # progress bars write to stderr, which the checks read as warnings
        }
        self.environment.pop("DMLNOTES_STATIC", None)  # static mode would turn every widget into a figure
        self.process: subprocess.Popen | None = None

    def trust(self, notebooks: list[Path]) -> None:
        """Sign the notebooks, as `jupyter trust` does, so their saved outputs' scripts run."""
        subprocess.run(
            [sys.executable, "-m", "jupyter", "trust", *map(str, notebooks)],
            env=self.environment,
            check=True,
            capture_output=True,
        )

    def start(self, timeout: float = 90.0) -> None:
        command = [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            f"--ServerApp.root_dir={self.root}",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            "--ServerApp.open_browser=False",
            f"--IdentityProvider.token={self.token}",
            # window.jupyterapp: the test runs cells through JupyterLab's own commands (as the Run menu does)
            "--LabApp.expose_app_in_browser=True",
            # Nothing the server fetches from the internet either: no news feed, no update check.
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--allow-root")  # containers and CI run as root
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(command, env=self.environment, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with code {self.process.returncode}:\n{self.log_tail()}")
            try:
                self.api("GET", "api/status")
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"JupyterLab did not answer on {self.base_url} within {timeout:.0f} s:\n{self.log_tail()}")

    def url(self, path: str, **query: str) -> str:
        parameters = "&".join([f"token={self.token}", *(f"{k}={v}" if v else k for k, v in query.items())])
        return f"{self.base_url}/{path}?{parameters}"

    def api(self, method: str, path: str):
        request = urllib.request.Request(
            f"{self.base_url}/{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shut_down_kernels(self) -> None:
        """End every notebook's session and kernel, so the next notebook has the CPU to itself."""
        for session in self.api("GET", "api/sessions"):
            self.api("DELETE", f"api/sessions/{session['id']}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            self.api("POST", "api/shutdown")  # stops the kernels too
            self.process.wait(timeout=20)
        except (urllib.error.URLError, ConnectionError, subprocess.TimeoutExpired):
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def copy_notebooks(sources: list[Path], destination: Path) -> list[Path]:
    """Copies of ``sources`` in ``destination``: the browser saves and runs these, never the committed files."""
    destination.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy2(source, destination / source.name)) for source in sources]
