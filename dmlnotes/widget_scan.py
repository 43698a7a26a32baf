"""Move every slider of a lesson over its whole range in the kernel, without a browser.

:func:`dmlnotes.plots.interactive` calls :func:`scan_if_requested` right after it shows a
live widget. When the environment variable ``DMLNOTES_WIDGET_SCAN`` is set, the widget's
callback runs at the values of each control's range (the other controls at their
defaults), and every value at which the callback raises, warns (as the student would see
it: deprecations inside libraries do not count), or draws or prints ``nan`` or ``inf``
fails the cell with a :class:`WidgetScanError` that lists them. So
the notebook tests (nbval) see what a student sees when moving a slider, not only the
static figure at the default.

``DMLNOTES_WIDGET_SCAN=all`` tries every value of the range (``make scan-widgets``); a
number ``n`` tries ``n`` evenly spaced values including both ends (``make test``: cheap,
and the ends are where numerics break).
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

SCAN_ENV_VAR = "DMLNOTES_WIDGET_SCAN"
# "nan" or "inf" as a word: "Entropy nan bits", "loss inf"; not "infinite" or "inference".
_NON_FINITE = re.compile(r"(?<![\w.])[-+]?(?:nan|inf)(?![\w])", re.IGNORECASE)


class WidgetScanError(AssertionError):
    """A widget's callback fails, warns or shows a non-finite number somewhere in its range."""


@dataclass(frozen=True)
class ScanProblem:
    control: str
    value: object
    what: str

    def __str__(self) -> str:
        value = f"{self.value:.4g}" if isinstance(self.value, float) else repr(self.value)
        return f"{self.control}={value}: {self.what}"


def requested_limit() -> int | None:
    """How many values per control the scan tries: None (no scan), or a count (0 = all)."""
    setting = os.environ.get(SCAN_ENV_VAR, "").strip().lower()
    if setting in ("", "0", "off"):
        return None
    if setting == "all":
        return 0
    if not setting.isdigit() or int(setting) < 2:
        raise ValueError(f"{SCAN_ENV_VAR} must be 'all' or a number of values >= 2, got {setting!r}")
    return int(setting)


def control_values(control) -> list:
    """Every value an ipywidgets control can take: a slider's steps, a selection's options."""
    import ipywidgets

    if isinstance(control, ipywidgets.FloatLogSlider):
        exponents = _steps(control.min, control.max, control.step)
        return [float(control.base**e) for e in exponents]
    if isinstance(control, (ipywidgets.IntSlider, ipywidgets.BoundedIntText)):
        return list(range(control.min, control.max + 1, control.step or 1))
    if isinstance(control, (ipywidgets.FloatSlider, ipywidgets.BoundedFloatText)):
        return [float(v) for v in _steps(control.min, control.max, control.step)]
    if isinstance(control, ipywidgets.Checkbox):
        return [False, True]
    if isinstance(control, (ipywidgets.SelectionSlider, ipywidgets.Dropdown, ipywidgets.RadioButtons)):
        options = control.options.items() if isinstance(control.options, Mapping) else control.options
        return [o[1] if isinstance(o, tuple) and len(o) == 2 else o for o in options]
    raise TypeError(f"cannot scan a {type(control).__name__}; widget_scan.control_values knows sliders and selections")


def _steps(low: float, high: float, step: float) -> np.ndarray:
    count = int(math.floor((high - low) / step + 1e-9)) + 1
    return np.round(low + step * np.arange(count), 12)  # 0.1 + 3 * 0.1 prints as 0.4, as the slider does


def spread(values: list, limit: int) -> list:
    """``limit`` evenly spaced values of ``values`` including both ends (all when ``limit`` is 0)."""
    if not limit or len(values) <= limit:
        return list(values)
    return [values[i] for i in sorted(set(np.round(np.linspace(0, len(values) - 1, limit)).astype(int)))]


def scan(function: Callable[..., object], controls: Mapping[str, object], limit: int = 0) -> list[ScanProblem]:
    """Call ``function`` over each control's range (``limit`` values, 0: all); return what went wrong."""
    defaults = {name: control.value for name, control in controls.items()}
    problems = []
    for name, control in controls.items():
        for value in spread(control_values(control), limit):
            problems += [ScanProblem(name, value, what) for what in _run_once(function, {**defaults, name: value})]
    return problems


def _run_once(function: Callable[..., object], arguments: dict) -> list[str]:
    """Call, draw the figures it made, close them; what raised, warned or showed nan/inf."""
    import matplotlib.pyplot as plt

    before = set(plt.get_fignums())
    printed = io.StringIO()
    found = []
    show = plt.show
    plt.show = lambda *args, **kwargs: None  # draw below instead of sending a picture to the cell
    try:
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(printed):
            warnings.simplefilter("always")
            # As IPython shows them: deprecations only from the notebook's own code, not from inside libraries.
            for category in (DeprecationWarning, PendingDeprecationWarning):
                warnings.filterwarnings("ignore", category=category)
                warnings.filterwarnings("always", category=category, module="__main__")
            try:
                function(**arguments)
                for number in set(plt.get_fignums()) - before:
                    figure = plt.figure(number)
                    figure.canvas.draw()  # warnings at drawing time count: the student's figure is drawn
                    found += [f"the figure shows {t!r}" for t in _figure_texts(figure) if _NON_FINITE.search(t)]
            except Exception as error:  # noqa: BLE001 - any error is a finding, reported with its type
                found.append(f"raises {type(error).__name__}: {error}")
        found += [f"warns {w.category.__name__}: {w.message}" for w in caught]
        found += [f"prints {line!r}" for line in printed.getvalue().splitlines() if _NON_FINITE.search(line)]
    finally:
        plt.show = show
        for number in set(plt.get_fignums()) - before:
            plt.close(number)
    return found


def _figure_texts(figure) -> list[str]:
    from matplotlib.text import Text

    return [t.get_text() for t in figure.findobj(Text) if t.get_visible() and t.get_text()]


def scan_if_requested(function: Callable[..., object], controls: Mapping[str, object]) -> None:
    """Scan when ``DMLNOTES_WIDGET_SCAN`` asks for it; raise :class:`WidgetScanError` on any problem."""
    limit = requested_limit()
    if limit is None:
        return
    problems = scan(function, controls, limit)
    if problems:
        name = getattr(function, "__name__", repr(function))
        listed = "\n".join(f"  {p}" for p in problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise WidgetScanError(f"widget {name} misbehaves at {len(problems)} value(s) of its range:\n{listed}{more}")
