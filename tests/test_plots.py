import io
import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from dmlnotes import plots
from dmlnotes.experiments import temperature_sweep as ts
from dmlnotes.training import Snapshot, TrainingHistory


def history_with(num_snapshots, normalized=False, n=12):
    rng = np.random.default_rng(0)
    snapshots = []
    for step in range(num_snapshots):
        points = rng.normal(size=(n, 2))
        if normalized:
            points /= np.linalg.norm(points, axis=1, keepdims=True)
        snapshots.append(Snapshot(step * 5, points))
    return TrainingHistory(losses=[1.0] * (5 * num_snapshots), snapshots=snapshots)


def test_frame_indices_cap_the_count_and_keep_both_ends():
    picks = plots.frame_indices(500, 40)
    assert len(picks) <= 40 and picks[0] == 0 and picks[-1] == 499
    assert list(plots.frame_indices(5, 40)) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError):
        plots.frame_indices(5, 1)


def test_animation_holds_at_most_max_frames_and_a_poster_of_the_last_frame():
    labels = np.arange(12) % 3
    plt.close("all")  # figures another test left open
    anim = plots.animate_embeddings(history_with(100), labels, max_frames=10)
    assert anim.num_frames == 10
    html = anim._repr_html_()
    assert len(re.findall(r"frames\[\d+\] = ", html)) == 10
    assert re.search(r'<img id="_anim_img\w*" src="data:image/png;base64,', html)
    assert not plt.get_fignums()  # the figure is closed, so the last frame is not shown twice


def test_side_by_side_animation_has_one_panel_per_run():
    labels = np.arange(12) % 3
    anim = plots.animate_runs({"a": history_with(6), "b": history_with(3, normalized=True)}, labels, max_frames=6)
    assert anim.num_frames == 6 and "<script" in anim.html


def test_plot_embeddings_draws_the_unit_circle_for_normalised_points():
    history = history_with(1, normalized=True)
    ax = plots.plot_embeddings(history.snapshots[0].embeddings, np.arange(12) % 4)
    assert any(isinstance(p, matplotlib.patches.Circle) for p in ax.patches)
    assert ax.get_xlim() == pytest.approx((-1.15, 1.15))
    ax = plots.plot_embeddings(np.zeros((3, 2)) + [[0, 0], [5, 5], [1, 2]], [0, 1, 1])
    assert not ax.patches
    plt.close("all")


def test_plots_reject_embeddings_that_are_not_2d():
    with pytest.raises(ValueError, match="2-D embeddings"):
        plots.plot_embeddings(np.zeros((4, 3)), [0, 0, 1, 1])
    with pytest.raises(ValueError, match="labels must have shape"):
        plots.plot_embeddings(np.zeros((4, 2)), [0, 1])


def test_class_colours_are_distinct_and_stable():
    for n in (3, 10, 15, 40):
        colours = plots.class_colors(n)
        assert len(colours) == n and len({tuple(c) for c in colours}) == n
    assert np.array_equal(plots.class_colors(10)[:3], plots.class_colors(10)[:3])


def test_interactive_is_static_under_make_notebooks(monkeypatch):
    import ipywidgets

    calls = []
    monkeypatch.delenv("DMLNOTES_WIDGET_SCAN", raising=False)  # make test scans the notebooks' widgets
    monkeypatch.setenv(plots.STATIC_ENV_VAR, "1")
    result = plots.interactive(lambda margin: calls.append(margin), margin=ipywidgets.FloatSlider(value=0.5))
    assert result is None and calls == [0.5]
    monkeypatch.setenv(plots.STATIC_ENV_VAR, "0")
    widget = plots.interactive(lambda margin: calls.append(margin), margin=ipywidgets.FloatSlider(value=0.7))
    assert widget is None and calls[-1] == 0.7  # None: no stray repr printed under the widget


def test_interactive_static_output_can_show_several_values(monkeypatch):
    import ipywidgets

    calls = []
    monkeypatch.setenv(plots.STATIC_ENV_VAR, "1")
    controls = dict(margin=ipywidgets.FloatSlider(value=0.5), scale=ipywidgets.FloatSlider(value=2.0))
    plots.interactive(
        lambda margin, scale: calls.append((margin, scale)), static_values={"margin": [0.1, 1.0]}, **controls
    )
    assert calls == [(0.1, 2.0), (1.0, 2.0)]
    with pytest.raises(ValueError, match="one of the controls"):
        plots.interactive(lambda margin, scale: None, static_values={"alpha": [1]}, **controls)


def test_animation_player_loads_nothing_from_the_internet():
    anim = plots.animate_embeddings(history_with(5), np.arange(12) % 3, max_frames=5)
    assert "http://" not in anim.html and "https://" not in anim.html
    assert "font-awesome" not in anim.html and '<i class="fa' not in anim.html
    assert "&#9654;" in anim.html  # the play button is a text symbol


def test_animation_frames_read_on_a_projector():
    anim = plots.animate_runs({"run": history_with(3)}, np.arange(12) % 3, max_frames=3, class_names=["a", "b", "c"])
    poster = re.search(r'src="data:image/png;base64,([^"]+)"', anim.html).group(1)
    import base64
    import io

    from PIL import Image

    width, _ = Image.open(io.BytesIO(base64.b64decode(poster))).size
    assert width >= 400  # 100 dpi: readable in the back row


def test_palette_roles_and_methods():
    assert plots.role_color("positive") == plots.role_color("pull") != plots.role_color("negative")
    assert plots.method_color("semi-hard") == plots.method_color("semi-hard") != plots.method_color("hardest negative")
    with pytest.raises(ValueError, match="unknown role"):
        plots.role_color("sideways")


def test_snapshot_slider_starts_at_the_last_snapshot(monkeypatch):
    monkeypatch.setenv(plots.STATIC_ENV_VAR, "1")
    plots.snapshot_slider(history_with(4), np.arange(12) % 3)
    plt.close("all")


def test_loss_curves_and_image_grid():
    ax = plots.plot_losses({"run": TrainingHistory(losses=list(np.linspace(2, 1, 30)))}, window=5)
    assert len(ax.lines) == 1 and len(ax.lines[0].get_xdata()) == 26
    fig = plots.show_images(np.zeros((5, 1, 8, 8)), [0, 1, 2, 0, 1], class_names=["a", "b", "c"], columns=3)
    assert len(fig.axes) == 6
    plt.close("all")


def test_plot_sweep_draws_our_row_beside_table1(tmp_path):
    rows = [(0.05, 0, 60.0), (0.05, 1, 62.0), (1.0, 0, 50.0), (1.0, 1, 51.0)]
    runs = [ts.RunResult(t, s, r / 100, 1.0, 0.5, 0.5, 0.2, 0.3, 1.0, 2.0, 0.1) for t, s, r in rows]
    result = ts.SweepResult.load(ts.SweepResult("glyphs", ts.GLYPHS, runs).save(tmp_path / "sweep.json"))
    ax = plots.plot_sweep(result)
    assert ax.get_xscale() == "log" and ax.get_ylabel().startswith("Recall@1")
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert any("Table 1" in label for label in labels) and any("2 seeds" in label for label in labels)
    plt.close(ax.figure)
    ax = plots.plot_sweep(result, reference=False)
    assert not any("Table 1" in text.get_text() for text in ax.get_legend().get_texts())
    plt.close(ax.figure)
    assert ts.plot_sweep is plots.plot_sweep  # where it lived before plots.py, and notebook 12 imports it


def test_palette_frames_keep_the_picture_and_shrink_it():
    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    rng = np.random.default_rng(0)
    plots.plot_embeddings(rng.normal(size=(200, 2)), np.arange(200) % 10, ax=ax)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    from PIL import Image

    full, compact = buffer.getvalue(), plots.palette_png(buffer.getvalue())
    assert len(compact) < len(full) / 2
    a = np.asarray(Image.open(io.BytesIO(full)).convert("RGB"), dtype=float)
    b = np.asarray(Image.open(io.BytesIO(compact)).convert("RGB"), dtype=float)
    assert a.shape == b.shape and np.abs(a - b).mean() < 2.0  # out of 255: the same picture
    pixels = b.reshape(-1, 3)
    for colour in plots.class_colors(10)[:, :3] * 255:  # every class keeps its own colour (legend markers)
        assert np.abs(pixels - colour).sum(axis=1).min() < 12


def test_animation_draws_markers_such_as_proxies_over_a_run():
    labels = np.arange(12) % 3
    proxies = [(0, np.eye(3, 2)), (10, -np.eye(3, 2))]  # one point per class, moved at step 10
    anim = plots.animate_runs(
        {"a": history_with(4), "b": history_with(4)},
        labels,
        max_frames=4,
        markers={"a": proxies},
        marker_classes={"a": [0, 1, 2]},
    )
    assert anim.num_frames == 4
    with pytest.raises(ValueError, match="not animated"):
        plots.animate_runs({"a": history_with(2)}, labels, markers={"c": proxies}, marker_classes={"c": [0, 1, 2]})
    with pytest.raises(ValueError, match="one class per row"):
        plots.animate_runs({"a": history_with(2)}, labels, markers={"a": proxies}, marker_classes={"a": [0, 1]})
    with pytest.raises(ValueError, match="class ids of the labels"):
        plots.animate_runs({"a": history_with(2)}, labels, markers={"a": proxies}, marker_classes={"a": [0, 1, 5]})
    plt.close("all")


def test_animation_opens_on_its_last_frame_and_says_how_to_play_without_trust():
    anim = plots.animate_embeddings(history_with(5), np.arange(12) % 3, max_frames=5)
    body = re.sub(r"<script.*?</script>", "", anim.html, flags=re.DOTALL)  # what an untrusted notebook shows
    assert plots.UNTRUSTED_NOTE in body and "run this cell" in body and "Trust Notebook" in body
    assert re.search(r'class="anim-slider"\s+name="points" min="0" max="4" step="1" value="4"', body)


# A fake page for matplotlib's player: the elements it touches, timers run by hand.
_FAKE_PAGE = """
const elements = {}, timers = [];
let removed = false;  // the output cleared, as when its cell is run again
function element(id) {
  return removed ? null : elements[id] || (elements[id] = {id: id, style: {}, value: 0, src: ""});
}
global.document = {getElementById: element};
global.navigator = {userAgent: "node"};
global.Image = function () { this.src = ""; };
global.setTimeout = (f) => f();
global.setInterval = (f) => { timers.push(f); return timers.length; };
global.clearInterval = () => { timers.length = 0; };
"""
_REPORT_PAGE = """
const id = Object.keys(elements).find((k) => k.startsWith("_anim_img")).slice("_anim_img".length);
const anim = global["anim" + id];
document["_anim_loop_select" + id] = {state: [{checked: true, value: "once"}]};
const opened = {frame: anim.current_frame, slider: element("_anim_slider" + id).value,
                note: element("_anim_note" + id).style.display, img: element("_anim_img" + id).src};
anim.play_animation();
const played = [anim.current_frame];
while (timers.length) { timers[0](); played.push(anim.current_frame); }
anim.first_frame();
anim.play_animation();
removed = true;
let ticks = 0;
while (timers.length && ticks < 10) { timers[0](); ticks += 1; }  // throws here without the guard
console.log(JSON.stringify({opened: opened, played: played, frames: anim.frames.map((f) => f.src),
                            ticks_after_removal: ticks, timer_left: timers.length}));
"""


def test_the_player_opens_on_the_last_frame_hides_the_note_and_plays_from_the_start(tmp_path):
    import json
    import shutil
    import subprocess

    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("needs Node.js to run the player's script")
    anim = plots.animate_embeddings(history_with(5), np.arange(12) % 3, max_frames=5)
    scripts = "\n;\n".join(re.findall(r"<script[^>]*>(.*?)</script>", anim.html, flags=re.DOTALL))
    page = tmp_path / "player.js"
    page.write_text(_FAKE_PAGE + scripts + _REPORT_PAGE)
    result = json.loads(subprocess.run([node, str(page)], capture_output=True, text=True, check=True).stdout)
    assert result["opened"]["frame"] == 4 and result["opened"]["slider"] == 4
    assert result["opened"]["img"] == result["frames"][4]  # the same picture the static poster shows
    assert result["opened"]["note"] == "none"  # the script ran: the note about trust goes away
    assert result["played"] == [0, 1, 2, 3, 4, 4]  # Play at the end starts over and stops on the last frame
    assert result["ticks_after_removal"] == 1 and result["timer_left"] == 0  # a removed player stops, silently
