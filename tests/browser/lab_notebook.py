"""One notebook open in JupyterLab in the browser: open it, run cells as the Run menu does,
read a cell's outputs, follow the kernel's status.

Cells run through JupyterLab's own commands (``window.jupyterapp``, which the test server
exposes), so they go through the same code path as a student's Shift+Enter; the sliders
are moved with the real mouse and keyboard (see ``widget_check``).
"""

from __future__ import annotations

import time

# The notebook panel showing `path`, and its cell `index`, in JupyterLab's main area.
_PANEL = """
const panelFor = (path) => {
  for (const widget of window.jupyterapp.shell.widgets("main")) {
    if (widget.context && widget.context.path === path) return widget;
  }
  throw new Error(`no notebook ${path} is open`);
};
"""

STDERR_MIME = "application/vnd.jupyter.stderr"  # JupyterLab renders warnings, stderr and tracebacks with it


class LabNotebook:
    def __init__(self, page, server, path: str):
        self.page = page
        self.server = server
        self.path = path
        self.kernel_id: str | None = None

    def open(self, timeout: float = 120.0) -> None:
        """Open the notebook in a fresh workspace and wait until its kernel is idle; from then
        on record every status of the kernel (a kernel that dies passes through "dead",
        "autorestarting" or "restarting")."""
        self.page.goto(self.server.url(f"lab/tree/{self.path}", reset=""))
        # Poll rather than await the panel's ready promises inside one evaluate: Chromium holds
        # such a pending promise only weakly and may collect it ("Resulting promise was garbage
        # collected", seen in CI on lesson 05), while polling keeps nothing pending.
        self.page.wait_for_function(
            _PANEL
            + """path => {
              try {
                const panel = panelFor(path);
                return panel.context.isReady && panel.sessionContext.isReady
                  && !!panel.sessionContext.session?.kernel;
              } catch { return false; }
            }""",
            arg=self.path,
            timeout=timeout * 1000,
        )
        self.kernel_id = self.page.evaluate(
            _PANEL
            + """path => {
              const panel = panelFor(path);
              window.kernelStatuses = [];
              panel.sessionContext.statusChanged.connect((_, status) => window.kernelStatuses.push(status));
              return panel.sessionContext.session.kernel.id;
            }""",
            self.path,
        )
        self.wait_until_idle(timeout)

    def run_cell(self, index: int, timeout: float = 600.0) -> tuple[bool, float]:
        """Select cell ``index`` and run it (Run > Run Selected Cell); (it succeeded, seconds)."""
        started = time.monotonic()
        outcome = self.page.evaluate(
            _PANEL
            + """async ([path, index, timeout]) => {
              const notebook = panelFor(path).content;
              notebook.activeCellIndex = index;
              notebook.deselectAll();
              const run = window.jupyterapp.commands.execute("notebook:run-cell");
              const late = new Promise(resolve => setTimeout(() => resolve("timeout"), timeout * 1000));
              return await Promise.race([run, late]);
            }""",
            [self.path, index, timeout],
        )
        if outcome == "timeout":
            raise TimeoutError(f"{self.path}: cell {index} still running after {timeout:.0f} s")
        return outcome is not False, time.monotonic() - started

    def cell(self, index: int):
        """A Playwright locator for cell ``index``, scrolled into view (marked with a data attribute)."""
        self.page.evaluate(
            _PANEL
            + """([path, index]) => {
              const notebook = panelFor(path).content;
              notebook.widgets.forEach((cell, i) => cell.node.toggleAttribute("data-under-test", i === index));
              notebook.widgets[index].node.scrollIntoView({block: "start"});
            }""",
            [self.path, index],
        )
        return self.page.locator("[data-under-test]")

    def stderr_outputs(self, index: int) -> list[str]:
        """The text of every warning, stderr stream and traceback under cell ``index``."""
        texts = self.cell(index).locator(f'[data-mime-type="{STDERR_MIME}"]').all_inner_texts()
        return [_shorten(text.strip()) for text in texts]

    def kernel_status(self) -> str:
        return self.page.evaluate(_PANEL + "path => panelFor(path).sessionContext.kernelDisplayStatus", self.path)

    def kernel_trouble(self) -> str | None:
        """Why the kernel is no longer the one the notebook started with, or None while it is."""
        seen = self.page.evaluate("() => window.kernelStatuses")
        died = [status for status in seen if status in ("dead", "autorestarting", "restarting")]
        if died:
            return f"the kernel died (statuses seen: {', '.join(dict.fromkeys(died))})"
        current = self.page.evaluate(_PANEL + "path => panelFor(path).sessionContext.session?.kernel?.id", self.path)
        if current != self.kernel_id:
            return f"the kernel was replaced ({self.kernel_id} -> {current})"
        return None

    def wait_until_idle(self, timeout: float = 60.0, quiet: float = 0.4) -> bool:
        """Wait until the kernel has been idle for ``quiet`` seconds; False if it never was within ``timeout``."""
        deadline = time.monotonic() + timeout
        idle_since = None
        while time.monotonic() < deadline:
            if self.kernel_status() == "idle":
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since >= quiet:
                    return True
            else:
                idle_since = None
            time.sleep(0.1)
        return False


def _shorten(text: str, head: int = 200, tail: int = 400) -> str:
    """A long traceback's first lines and its end, where the exception's message is."""
    return text if len(text) <= head + tail else f"{text[:head]} [...] {text[-tail:]}"
