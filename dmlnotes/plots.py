"""Figures of the lessons: 2-D embedding scatter plots, training animations, sliders, loss
curves, the temperature sweep's Recall@1 against Table 1.

Animations are matplotlib ``FuncAnimation`` objects rendered as inline HTML (JavaScript
player with palette-PNG frames embedded), capped at ``max_frames`` so that a notebook stays
small. Frames are drawn for a projector: 100 dpi, axis labels, a class legend and the
step in each panel's title. The player's image starts on the last frame, so a reader of
a code host that strips JavaScript still sees the result of training; the player opens on
that frame too, and, where its script does not run (a notebook JupyterLab does not trust),
a note says how to make it play. Its buttons are
plain text symbols: nothing is loaded from the internet (matplotlib's own player fetches
an icon font from a CDN, which leaves the buttons blank offline).

Colours: one palette for the collection. :data:`ROLE_COLORS` names the colour of each role
a figure shows (anchor, positive, negative, pull, push, ours, the paper's) and
:func:`method_color` gives each loss or mining strategy the same colour in every notebook.

Widgets: :func:`interactive` shows a live ipywidgets control in JupyterLab, and a static
figure at the default value when the notebook is executed by ``make notebooks``
(environment variable ``DMLNOTES_STATIC=1``), so committed notebooks read well without a
kernel.
"""

from __future__ import annotations

import base64
import io
import os
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import animation

if TYPE_CHECKING:  # for the hint only: importing the sweep loads torch and the training code
    from .experiments.temperature_sweep import SweepResult

STATIC_ENV_VAR = "DMLNOTES_STATIC"
PALETTE_COLORS = 256  # colours of an animation frame: fewer merge class colours (median cut keeps them at 256)

# Okabe & Ito's colour-blind-safe palette, one role per colour, for every figure of the collection.
ROLE_COLORS: dict[str, str] = {
    "anchor": "#000000",
    "positive": "#0072B2",  # blue: positives, and the pull on them
    "negative": "#D55E00",  # vermillion: negatives, and the push on them
    "pull": "#0072B2",
    "push": "#D55E00",
    "ours": "#E69F00",  # orange: what this collection measured
    "paper": "#555555",  # grey: values reported in the literature
    "highlight": "#E69F00",  # this lesson's method in a comparison
    "other": "#56B4E9",  # the other methods in a comparison
    "neutral": "#999999",
}

# The same method has the same colour in every figure (mining strategies, losses, settings).
_METHOD_PALETTE = [
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#F0E442",
    "#000000",
    "#8C564B",
    "#7F7F7F",
    "#BCBD22",
    "#17BECF",
]
METHOD_COLORS: dict[str, str] = {
    name: _METHOD_PALETTE[index % len(_METHOD_PALETTE)]
    for index, name in enumerate(
        [
            "all triplets",
            "random",
            "hardest negative",
            "semi-hard",
            "batch-hard",
            "easy",
        ]
    )
}


def role_color(role: str) -> str:
    """The collection's colour for a role ("anchor", "positive", "negative", "pull", "push", "ours", ...)."""
    try:
        return ROLE_COLORS[role]
    except KeyError:
        raise ValueError(f"unknown role {role!r}; expected one of {sorted(ROLE_COLORS)}") from None


def method_color(name: str) -> str:
    """A fixed colour for a method (mining strategy or loss); unknown names get a stable colour."""
    if name in METHOD_COLORS:
        return METHOD_COLORS[name]
    index = sum(ord(c) * (i + 1) for i, c in enumerate(name)) % len(_METHOD_PALETTE)
    return _METHOD_PALETTE[index]


def static_mode() -> bool:
    """True while ``make notebooks`` executes the notebooks (widgets become static figures)."""
    return os.environ.get(STATIC_ENV_VAR, "0") == "1"


def class_colors(num_classes: int) -> np.ndarray:
    """One RGBA colour per class, the same for a class throughout a notebook."""
    if num_classes <= 10:
        return plt.get_cmap("tab10")(np.arange(num_classes))
    if num_classes <= 20:
        return plt.get_cmap("tab20")(np.arange(num_classes))
    return plt.get_cmap("turbo")(np.linspace(0.05, 0.95, num_classes))


def _as_numpy(values) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def _check_2d(embeddings: np.ndarray, labels: np.ndarray) -> None:
    if embeddings.ndim != 2 or embeddings.shape[1] != 2:
        raise ValueError(f"plots show 2-D embeddings of shape (n, 2), got shape {embeddings.shape}")
    if labels.shape != (embeddings.shape[0],):
        raise ValueError(f"labels must have shape ({embeddings.shape[0]},), got {labels.shape}")


def _on_unit_circle(embeddings: np.ndarray) -> bool:
    return bool(embeddings.size) and bool(np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-3))


def plot_embeddings(
    embeddings,
    labels,
    ax=None,
    title: str | None = None,
    normalized: bool | None = None,
    class_names: Sequence[str] | None = None,
    legend: bool | None = None,
    limits: float | None = None,
    size: float = 10.0,
):
    """Scatter 2-D embeddings coloured by class; on the unit circle if they are normalised.

    Args:
        normalized: draw the unit circle and fix the axes to it; default: detect.
        legend: show a legend (default when there are at most 10 classes).
        limits: half-width of the square axes (default: fit the points).
    """
    embeddings, labels = _as_numpy(embeddings), _as_numpy(labels)
    _check_2d(embeddings, labels)
    if labels.size and not np.issubdtype(labels.dtype, np.integer):  # astype(int) would truncate 2.7 to class 2
        raise ValueError(f"labels must be integer class ids (they pick the colours), got dtype {labels.dtype}")
    if labels.size and labels.min() < 0:
        raise ValueError(f"labels must be class ids >= 0 (they pick the colours), got {labels.min()}")
    labels = labels.astype(int)
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    num_classes = int(labels.max()) + 1 if labels.size else 0
    colors = class_colors(num_classes)
    normalized = _on_unit_circle(embeddings) if normalized is None else normalized
    if normalized:
        ax.add_patch(plt.Circle((0, 0), 1.0, fill=False, color="0.75", lw=1))
        limits = 1.15 if limits is None else limits
    ax.scatter(embeddings[:, 0], embeddings[:, 1], c=colors[labels], s=size, alpha=0.8, linewidths=0)
    if limits is not None:
        ax.set_xlim(-limits, limits)
        ax.set_ylim(-limits, limits)
    ax.set_aspect("equal")
    if title:
        ax.set_title(title, fontsize=10)
    if legend if legend is not None else num_classes <= 10:
        names = class_names if class_names is not None else [str(c) for c in range(num_classes)]
        if len(names) < num_classes:
            raise ValueError(f"class_names must name every class id 0 .. {num_classes - 1}, got {len(names)} names")
        handles = [plt.Line2D([], [], ls="", marker="o", color=colors[c], label=names[c]) for c in np.unique(labels)]
        ax.legend(handles=handles, fontsize=9, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    return ax


def _snapshots_of(run):
    """Accept a TrainingHistory or a list of (step, embeddings) / Snapshot objects."""
    snapshots = getattr(run, "snapshots", run)
    steps, arrays = [], []
    for snapshot in snapshots:
        step, array = (snapshot.step, snapshot.embeddings) if hasattr(snapshot, "step") else snapshot
        steps.append(int(step))
        arrays.append(_as_numpy(array))
    if not arrays:
        raise ValueError("no snapshots to show: train with snapshot_every=N and snapshot_inputs=...")
    return steps, arrays


def frame_indices(num_snapshots: int, max_frames: int) -> np.ndarray:
    """At most ``max_frames`` evenly spaced snapshot indices, always keeping first and last."""
    if max_frames < 2:
        raise ValueError(f"max_frames must be at least 2, got {max_frames}")
    if num_snapshots <= max_frames:
        return np.arange(num_snapshots)
    return np.unique(np.round(np.linspace(0, num_snapshots - 1, max_frames)).astype(int))


def _axis_limit(arrays: Sequence[np.ndarray]) -> float:
    stacked = np.concatenate([np.abs(a).ravel() for a in arrays])
    return float(np.percentile(stacked, 99.5) * 1.1) or 1.0


def animate_runs(
    runs: Mapping[str, object],
    labels,
    max_frames: int = 30,
    panel_size: float = 3.4,
    dpi: int = 100,
    interval: int = 200,
    class_names: Sequence[str] | None = None,
    suptitle: str | None = None,
    legend: bool | None = None,
    markers: Mapping[str, object] | None = None,
    marker_classes: Mapping[str, Sequence[int]] | None = None,
):
    """Side-by-side animation of several runs' snapshots, one panel per run.

    ``runs`` maps a title to a TrainingHistory (or a list of snapshots). Frames follow the
    first run's snapshot steps; the others show their snapshot at the same step or the
    last one before it. Each panel has axis labels and the step in its title; a class
    legend sits right of the panels (default: at most 10 classes). Returns an
    :class:`Animation` that displays as inline HTML.

    ``markers`` maps a run's title to points drawn over its embedding as large stars, such
    as the proxies of a proxy loss: a list of ``(step, array (m, 2))`` recorded during
    training (e.g. by a ``fit`` callback), shown like the snapshots (the last one at or
    before the frame's step); ``marker_classes[title]`` gives each point's class, its colour.
    """
    labels = _as_numpy(labels).astype(int)
    series = {name: _snapshots_of(run) for name, run in runs.items()}
    markers = {name: _snapshots_of(points) for name, points in (markers or {}).items()}
    unknown = sorted(set(markers) - set(series))
    if unknown:
        raise ValueError(f"markers name runs that are not animated: {unknown}; runs are {sorted(series)}")
    marker_classes = dict(marker_classes or {})
    for name, (_, points) in markers.items():
        classes = _as_numpy(marker_classes.get(name, [])).astype(int)
        if any(p.ndim != 2 or p.shape != (classes.size, 2) for p in points):
            raise ValueError(f"markers[{name!r}] must be (m, 2) arrays with one class per row in marker_classes")
        if classes.size and (classes.min() < 0 or classes.max() > labels.max(initial=-1)):
            raise ValueError(f"marker_classes[{name!r}] must be class ids of the labels, 0 .. {labels.max(initial=-1)}")
        marker_classes[name] = classes
    frame_steps = np.array(next(iter(series.values()))[0])[
        frame_indices(len(next(iter(series.values()))[0]), max_frames)
    ]
    num_classes = int(labels.max()) + 1 if labels.size else 0
    show_legend = num_classes <= 10 if legend is None else legend
    legend_width = 0.9 if show_legend else 0.0
    fig, axes = plt.subplots(
        1,
        len(series),
        figsize=(panel_size * len(series) + legend_width + 0.2, panel_size + 0.5),
        dpi=dpi,
        squeeze=False,
    )
    axes = axes[0]
    colors = class_colors(num_classes)
    plans = []
    for ax, (name, (steps, arrays)) in zip(axes, series.items()):
        for array in arrays:
            _check_2d(array, labels)
        normalized = all(_on_unit_circle(a) for a in arrays)
        limit = 1.15 if normalized else _axis_limit(arrays)
        picks = [max(int(np.searchsorted(steps, s, side="right")) - 1, 0) for s in frame_steps]
        plans.append((ax, name, steps, arrays, picks, normalized, limit))

    def draw(frame: int):
        for ax, name, steps, arrays, picks, normalized, limit in plans:
            ax.clear()
            index = picks[frame]
            plot_embeddings(arrays[index], labels, ax=ax, normalized=normalized, limits=limit, legend=False, size=9)
            if name in markers:
                marker_steps, points = markers[name]
                shown = points[max(int(np.searchsorted(marker_steps, steps[index], side="right")) - 1, 0)]
                ax.scatter(*shown.T, marker="*", s=260, c=colors[marker_classes[name]], edgecolors="black", zorder=5)
            ax.set_title(f"{name}\nstep {steps[index]}", fontsize=11)
            ax.set_xlabel("embedding dim 1", fontsize=10)
            ax.set_ylabel("embedding dim 2", fontsize=10)
            ax.tick_params(labelsize=9)
        return []

    if suptitle:
        fig.suptitle(suptitle, fontsize=12)
    if show_legend:
        names = class_names if class_names is not None else [str(c) for c in range(num_classes)]
        handles = [plt.Line2D([], [], ls="", marker="o", color=colors[c], label=names[c]) for c in np.unique(labels)]
        if markers:
            handles.append(
                plt.Line2D(
                    [], [], ls="", marker="*", markersize=12, color="white", markeredgecolor="black", label="proxy"
                )
            )
        fig.legend(handles=handles, title="class", fontsize=9, title_fontsize=9, loc="center right", frameon=False)
    draw(0)  # lay out with the labels and titles in place, so neighbouring panels do not overlap
    fig.tight_layout(rect=(0, 0, 1 - legend_width / fig.get_figwidth(), 1))
    anim = animation.FuncAnimation(fig, draw, frames=len(frame_steps), interval=interval, blit=False)
    html = _jshtml_with_poster(anim, fig, draw, len(frame_steps) - 1)
    plt.close(fig)
    return Animation(html, len(frame_steps))


def animate_embeddings(history, labels, title: str = "", **kwargs):
    """Animation of one run's 2-D embedding snapshots (see :func:`animate_runs`)."""
    return animate_runs({title or "embeddings": history}, labels, **kwargs)


# Text symbols for the player's buttons, in place of matplotlib's icon font from a CDN.
_BUTTON_SYMBOLS = {
    "fa fa-minus": "&minus;",
    "fa fa-fast-backward": "&#10074;&#9664;&#9664;",
    "fa fa-step-backward": "&#10074;&#9664;",
    "fa fa-play fa-flip-horizontal": "&#9664;",
    "fa fa-pause": "&#10074;&#10074;",
    "fa fa-play": "&#9654;",
    "fa fa-step-forward": "&#9654;&#10074;",
    "fa fa-fast-forward": "&#9654;&#9654;&#10074;",
    "fa fa-plus": "+",
}


def offline_player(html: str) -> str:
    """matplotlib's JavaScript player without its external icon font: text symbols on the buttons."""
    html = re.sub(r"<link[^>]*font-awesome[^>]*>\s*", "", html)
    for icon, symbol in _BUTTON_SYMBOLS.items():
        html = html.replace(f'<i class="{icon}"></i>', f'<span aria-hidden="true">{symbol}</span>')
    leftover = re.search(r'<i class="fa[^"]*"></i>|https?://', html)
    if leftover:  # a matplotlib release with other icons or links: fail loudly, not offline
        raise RuntimeError(f"animation player still refers to {leftover.group(0)!r}; update plots._BUTTON_SYMBOLS")
    return html


def palette_png(png: bytes, colors: int = PALETTE_COLORS) -> bytes:
    """A PNG reduced to ``colors`` colours: scatter plots and text stay sharp at half a JPEG's size."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors, method=Image.Quantize.MEDIANCUT)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


class _PaletteHTMLWriter(animation.HTMLWriter):
    """matplotlib's HTML writer with palette PNG frames (see :func:`palette_png`)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.frame_format = "png"

    def grab_frame(self, **savefig_kwargs):
        savefig = self.fig.savefig

        def compact_savefig(target, **kwargs):
            buffer = io.BytesIO()
            savefig(buffer, **kwargs)
            target.write(palette_png(buffer.getvalue()))

        self.fig.savefig = compact_savefig
        try:
            super().grab_frame(**savefig_kwargs)
        finally:
            del self.fig.savefig


def _jshtml_with_poster(anim, fig, draw: Callable[[int], object], last_frame: int) -> str:
    """The animation's JavaScript player (offline), with its image preset to the last frame."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "animation.html")
        anim.save(
            str(path), writer=_PaletteHTMLWriter(fps=1000 / anim._interval, embed_frames=True, default_mode="once")
        )
        html = path.read_text()
    draw(last_frame)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi)
    poster = base64.b64encode(palette_png(buffer.getvalue())).decode("ascii")
    html = re.sub(r'(<img id="_anim_img\w*")', rf'\1 src="data:image/png;base64,{poster}"', html, count=1)
    return opens_on_last_frame(offline_player(html), last_frame)


# Shown until the player's script runs: JupyterLab does not run the scripts of a notebook it does not trust.
UNTRUSTED_NOTE = (  # JupyterLab 4 offers "Trust Notebook" in its command palette, not in a menu
    "To play the animation: run this cell, or trust the notebook (command palette, Ctrl+Shift+C: Trust Notebook)."
)


def opens_on_last_frame(html: str, last_frame: int) -> str:
    """matplotlib's player set to open on the last frame, the one its image shows before the
    script runs; Play from there starts over; a note, which the script hides, says how to
    make the player work where the script does not run; a player whose output was removed
    (the cell re-run while it played) stops its timer instead of throwing every frame."""
    anim_id = re.search(r'<img id="_anim_img(\w*)"', html).group(1)
    html, sliders = re.subn(
        rf'(<input id="_anim_slider{anim_id}"[^>]*?) max="1" step="1" value="0"',
        rf'\1 max="{last_frame}" step="1" value="{last_frame}"',
        html,
    )
    created = f"anim{anim_id} = new Animation("
    if sliders != 1 or html.count(created) != 1:  # a matplotlib release with another player: fail loudly
        raise RuntimeError("the animation player's HTML changed; update plots.opens_on_last_frame")
    note = f'<p id="_anim_note{anim_id}" class="anim-note" style="font-size:small;color:#555">{UNTRUSTED_NOTE}</p>'
    html = html.replace('<div class="anim-controls">', f'{note}\n  <div class="anim-controls">', 1)
    start, end = html.index(created), html.index(");", html.index(created)) + 2
    opened = (
        f"{html[start:end]}\n"
        f"        var anim = anim{anim_id}, play = anim.play_animation;\n"
        "        anim.last_frame();\n"
        "        anim.play_animation = function() {  /* Play at the end starts over, as a video does */\n"
        "          if (this.current_frame >= this.frames.length - 1) { this.first_frame(); }\n"
        "          play.call(this);\n"
        "        };\n"
        "        ['anim_step_forward', 'anim_step_reverse'].forEach(function(name) {\n"
        "          var step = anim[name];  /* a re-run cell removes the player: stop its timer, not throw */\n"
        "          anim[name] = function() {\n"
        f'            if (!document.getElementById("_anim_img{anim_id}")) {{ this.pause_animation(); return; }}\n'
        "            step.call(this);\n"
        "          };\n"
        "        });\n"
        f'        document.getElementById("_anim_note{anim_id}").style.display = "none";'
    )
    return html[:start] + opened + html[end:]


class Animation:
    """Inline HTML of an animation; ``num_frames`` tells how many frames it holds."""

    def __init__(self, html: str, num_frames: int):
        self.html = html
        self.num_frames = num_frames

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return f"Animation({self.num_frames} frames, {len(self.html) // 1024} kB)"


def interactive(
    function: Callable[..., object], static_values: Mapping[str, Sequence] | None = None, **controls
) -> None:
    """``ipywidgets.interact(function, **controls)`` in a live notebook; in static mode
    (``make notebooks``) the figure at the controls' current values, so the committed
    notebook shows the lesson without a kernel. Controls are ipywidgets (sliders, dropdowns).

    ``static_values`` maps one control's name to the values the static output shows, one
    figure each, for a parameter whose point is in the change (small multiples); choose
    a default at which the point is visible otherwise. Returns None, so a notebook cell
    ending in this call prints nothing under the widget.

    With ``DMLNOTES_WIDGET_SCAN`` set (the notebook tests), the live widget's callback is
    also run over each control's range and any warning, error or nan fails the cell
    (:mod:`dmlnotes.widget_scan`).
    """
    if static_mode():
        defaults = {name: control.value for name, control in controls.items()}
        if not static_values:
            function(**defaults)
            plt.show()
            return None
        if len(static_values) != 1 or next(iter(static_values)) not in controls:
            raise ValueError(
                f"static_values must name one of the controls {sorted(controls)}, got {sorted(static_values)}"
            )
        ((name, values),) = static_values.items()
        for value in values:
            function(**{**defaults, name: value})
            plt.show()
        return None
    import ipywidgets

    from .widget_scan import scan_if_requested

    ipywidgets.interact(function, **controls)
    scan_if_requested(function, controls)  # the notebook tests move the slider over its range
    return None


def snapshot_slider(history, labels, class_names: Sequence[str] | None = None, title: str = ""):
    """A slider over a run's snapshots: move it to see the embedding at each step."""
    import ipywidgets

    steps, arrays = _snapshots_of(history)
    labels = _as_numpy(labels).astype(int)
    normalized = all(_on_unit_circle(a) for a in arrays)
    limit = 1.15 if normalized else _axis_limit(arrays)

    def show(snapshot: int):
        _, ax = plt.subplots(figsize=(4, 4))
        plot_embeddings(arrays[snapshot], labels, ax=ax, normalized=normalized, limits=limit, class_names=class_names)
        ax.set_title(f"{title} step {steps[snapshot]}".strip(), fontsize=10)
        plt.show()

    slider = ipywidgets.IntSlider(value=len(arrays) - 1, min=0, max=len(arrays) - 1, description="snapshot")
    return interactive(show, snapshot=slider)


def plot_losses(
    histories: Mapping[str, object], ax=None, window: int = 10, title: str = "Training loss", logy: bool = False
):
    """Loss curves (moving average over ``window`` steps) of several runs."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3))
    for name, history in histories.items():
        curve = history.smoothed_losses(window)
        ax.plot(np.arange(len(curve)) + (len(history.losses) - len(curve)) + 1, curve, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel(f"loss ({window}-step average)" if window > 1 else "loss")
    if logy:
        ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return ax


def plot_sweep(result: SweepResult, ax=None, reference: bool = True, title: str | None = None):
    """Recall@1 against the temperature on a log axis: each seed, the mean, and Table 1's row.

    ``result`` is a :class:`~dmlnotes.experiments.temperature_sweep.SweepResult` (run or loaded);
    ``reference=False`` leaves out the survey's Table 1.
    """
    from .experiments.temperature_sweep.config import TABLE1_RECALL_AT_1, TABLE1_TEMPERATURES

    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.5))
    temperatures = np.array(result.temperatures)
    values = 100 * result.values()
    for column in range(values.shape[1]):
        ax.plot(
            temperatures,
            values[:, column],
            "o",
            color=role_color("ours"),
            alpha=0.45,
            markersize=4,
            label="one seed" if column == 0 else None,
        )
    ax.errorbar(
        temperatures,
        result.mean_recall(),
        yerr=result.spread_recall(),
        color=role_color("ours"),
        marker="o",
        capsize=3,
        label=f"{result.setup}: mean $\\pm$ std over {values.shape[1]} seeds",
    )
    if reference:
        ax.plot(
            TABLE1_TEMPERATURES,
            TABLE1_RECALL_AT_1,
            "s--",
            color=role_color("paper"),
            label="survey Table 1 (CUB-200-2011)",
        )
    ax.set_xscale("log")
    ax.set_xlabel("temperature T (log scale)")
    ax.set_ylabel("Recall@1 on test classes (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title or "Recall@1 against the temperature of the normalised softmax", fontsize=10)
    ax.legend(fontsize=9)
    return ax


def show_images(
    images, labels=None, class_names: Sequence[str] | None = None, columns: int = 12, title: str | None = None
):
    """A grid of grayscale images ``(n, 1, H, W)`` or ``(n, H, W)`` with their class names."""
    images = _as_numpy(images)
    if images.ndim == 4:
        images = images[:, 0]
    rows = -(-len(images) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 0.7, rows * 0.8), squeeze=False)
    for index, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if index < len(images):
            ax.imshow(images[index], cmap="gray", vmin=0, vmax=1)
            if labels is not None:
                label = int(_as_numpy(labels)[index])
                ax.set_title(class_names[label] if class_names is not None else str(label), fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
