import math
import warnings

import matplotlib

matplotlib.use("Agg")

import ipywidgets
import matplotlib.pyplot as plt
import numpy as np
import pytest

from dmlnotes import plots, widget_scan


def entropy_clipped_in_float32(T):
    """Notebook 12's widget before its fix: float32 probabilities clipped at 1e-300 become 0."""
    logits = np.array([6.0, 4.5, 3.5, 1.5, -1.0, -2.0], dtype=np.float32)
    q = np.exp(logits / np.float32(T) - (logits / np.float32(T)).max())
    q = (q / q.sum()).astype(np.float32)
    entropy = -(q * np.log2(np.clip(q, 1e-300, 1))).sum()
    _, ax = plt.subplots()
    ax.set_title(f"Entropy {entropy:.2f} bits")


def entropy_in_log_space(T):
    log_q = np.array([6.0, 4.5, 3.5, 1.5, -1.0, -2.0]) / T
    log_q -= np.logaddexp.reduce(log_q)
    entropy = -(np.exp(log_q) * log_q).sum() / math.log(2)
    _, ax = plt.subplots()
    ax.set_title(f"Entropy {entropy:.2f} bits")


def temperature_slider():
    return ipywidgets.FloatLogSlider(value=3.0, base=10, min=-2.3, max=1.3, step=0.1, description="T")


def test_the_range_of_each_kind_of_control():
    assert widget_scan.control_values(ipywidgets.IntSlider(value=2, min=1, max=4)) == [1, 2, 3, 4]
    floats = widget_scan.control_values(ipywidgets.FloatSlider(value=0.2, min=0.0, max=1.0, step=0.05))
    assert len(floats) == 21 and floats[0] == 0.0 and floats[-1] == 1.0 and 0.15 in floats
    logs = widget_scan.control_values(temperature_slider())
    assert logs[0] == pytest.approx(10**-2.3) and logs[-1] == pytest.approx(10**1.3) and len(logs) == 37
    options = widget_scan.control_values(ipywidgets.SelectionSlider(options=[0.01, 0.1], value=0.1))
    assert options == [0.01, 0.1]
    assert widget_scan.control_values(ipywidgets.Dropdown(options=[("small", 1), ("large", 2)], value=1)) == [1, 2]
    with pytest.raises(TypeError, match="cannot scan a Text"):
        widget_scan.control_values(ipywidgets.Text())


def test_spread_keeps_both_ends():
    assert widget_scan.spread(list(range(100)), 5) == [0, 25, 50, 74, 99]
    assert widget_scan.spread([1, 2, 3], 5) == [1, 2, 3]
    assert widget_scan.spread(list(range(100)), 0) == list(range(100))


def test_the_scan_finds_the_nan_of_a_float32_entropy_at_small_temperatures():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the scan must keep the callback's warnings to itself
        problems = widget_scan.scan(entropy_clipped_in_float32, {"T": temperature_slider()})
    temperatures = sorted({p.value for p in problems})
    assert temperatures and max(temperatures) < 0.1 and min(temperatures) == pytest.approx(10**-2.3)
    kinds = " ".join(p.what for p in problems)
    assert "warns RuntimeWarning" in kinds and "'Entropy nan bits'" in kinds
    assert not plt.get_fignums()  # every figure the scan drew is closed


def test_a_stable_entropy_passes_down_to_t_0_005():
    assert widget_scan.scan(entropy_in_log_space, {"T": temperature_slider()}) == []


def test_errors_and_printed_infinities_are_found():
    def fails_at_the_end(k):
        if k == 3:
            raise ZeroDivisionError("division by zero")
        print(f"loss {math.inf if k == 2 else 1.0}")

    problems = widget_scan.scan(fails_at_the_end, {"k": ipywidgets.IntSlider(value=1, min=1, max=3)})
    assert [(p.value, p.what.split(" ")[0]) for p in problems] == [(2, "prints"), (3, "raises")]


def test_other_controls_stay_at_their_defaults():
    calls = []
    controls = {"a": ipywidgets.IntSlider(value=1, min=0, max=2), "b": ipywidgets.Checkbox(value=False)}
    widget_scan.scan(lambda a, b: calls.append((a, b)), controls)
    assert calls == [(0, False), (1, False), (2, False), (1, False), (1, True)]


def test_interactive_scans_the_live_widget_when_asked(monkeypatch):
    monkeypatch.setenv(plots.STATIC_ENV_VAR, "0")
    monkeypatch.setenv(widget_scan.SCAN_ENV_VAR, "5")
    plots.interactive(entropy_in_log_space, T=temperature_slider())
    found = r"(?s)entropy_clipped_in_float32 misbehaves.*T=0\.005012: the figure shows .Entropy nan bits"
    with pytest.raises(widget_scan.WidgetScanError, match=found):
        plots.interactive(entropy_clipped_in_float32, T=temperature_slider())
    monkeypatch.setenv(widget_scan.SCAN_ENV_VAR, "1")
    with pytest.raises(ValueError, match="DMLNOTES_WIDGET_SCAN must be"):
        plots.interactive(entropy_in_log_space, T=temperature_slider())
    plt.close("all")


def test_warnings_count_as_a_student_sees_them():
    def warns(kind):
        if kind == "future":
            warnings.warn("this default changes", FutureWarning, stacklevel=1)
        elif kind == "deprecated in the notebook":
            warnings.warn_explicit("old call", DeprecationWarning, "cell.py", 1, module="__main__")
        else:  # IPython hides a library's deprecation warnings
            warnings.warn("old call", DeprecationWarning, stacklevel=1)

    kinds = ipywidgets.Dropdown(options=["future", "deprecated in the notebook", "deprecated in a library"])
    found = [(p.value, p.what) for p in widget_scan.scan(warns, {"kind": kinds})]
    assert found == [
        ("future", "warns FutureWarning: this default changes"),
        ("deprecated in the notebook", "warns DeprecationWarning: old call"),
    ]
