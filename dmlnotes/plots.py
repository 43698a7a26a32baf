"""Figures of the lessons: 2-D embedding scatter plots, training animations, sliders.

Animations are matplotlib ``FuncAnimation`` objects rendered as inline HTML (JavaScript
player with JPEG frames embedded), capped at ``max_frames`` so that a notebook stays
small. The player's image starts on the last frame, so a reader of a code host that
strips JavaScript still sees the result of training.

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
from collections.abc import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import animation

STATIC_ENV_VAR = "DMLNOTES_STATIC"


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
    embeddings, labels = _as_numpy(embeddings), _as_numpy(labels).astype(int)
    _check_2d(embeddings, labels)
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
        handles = [plt.Line2D([], [], ls="", marker="o", color=colors[c], label=names[c]) for c in np.unique(labels)]
        ax.legend(handles=handles, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
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
    max_frames: int = 40,
    panel_size: float = 3.0,
    dpi: int = 64,
    interval: int = 150,
    class_names: Sequence[str] | None = None,
    suptitle: str | None = None,
):
    """Side-by-side animation of several runs' snapshots, one panel per run.

    ``runs`` maps a title to a TrainingHistory (or a list of snapshots). Frames follow the
    first run's snapshot steps; the others show their snapshot at the same step or the
    last one before it. Returns an :class:`Animation` that displays as inline HTML.
    """
    labels = _as_numpy(labels).astype(int)
    series = {name: _snapshots_of(run) for name, run in runs.items()}
    frame_steps = np.array(next(iter(series.values()))[0])[frame_indices(len(next(iter(series.values()))[0]), max_frames)]
    fig, axes = plt.subplots(1, len(series), figsize=(panel_size * len(series) + 0.2, panel_size + 0.35), dpi=dpi, squeeze=False)
    axes = axes[0]
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
            plot_embeddings(arrays[index], labels, ax=ax, normalized=normalized, limits=limit, legend=False, size=6)
            ax.set_title(f"{name}\nstep {steps[index]}", fontsize=8)
            ax.tick_params(labelsize=6)
        return []

    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout()
    anim = animation.FuncAnimation(fig, draw, frames=len(frame_steps), interval=interval, blit=False)
    html = _jshtml_with_poster(anim, fig, draw, len(frame_steps) - 1)
    plt.close(fig)
    return Animation(html, len(frame_steps))


def animate_embeddings(history, labels, title: str = "", **kwargs):
    """Animation of one run's 2-D embedding snapshots (see :func:`animate_runs`)."""
    return animate_runs({title or "embeddings": history}, labels, **kwargs)


def _jshtml_with_poster(anim, fig, draw: Callable[[int], object], last_frame: int) -> str:
    """The animation's JavaScript player, with its image preset to the last frame."""
    with plt.rc_context({"animation.frame_format": "jpeg"}):  # a third of the size of PNG frames
        html = anim.to_jshtml(default_mode="once")
    draw(last_frame)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi)
    poster = base64.b64encode(buffer.getvalue()).decode("ascii")
    return re.sub(r'(<img id="_anim_img\w*")', rf'\1 src="data:image/png;base64,{poster}"', html, count=1)


class Animation:
    """Inline HTML of an animation; ``num_frames`` tells how many frames it holds."""

    def __init__(self, html: str, num_frames: int):
        self.html = html
        self.num_frames = num_frames

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return f"Animation({self.num_frames} frames, {len(self.html) // 1024} kB)"


def interactive(function: Callable[..., object], **controls):
    """``ipywidgets.interact(function, **controls)`` in a live notebook; in static mode
    (``make notebooks``) one call at the controls' current values, so the committed
    notebook shows the default figure. Controls are ipywidgets (sliders, dropdowns)."""
    if static_mode():
        function(**{name: control.value for name, control in controls.items()})
        plt.show()
        return None
    import ipywidgets

    return ipywidgets.interact(function, **controls)


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


def plot_losses(histories: Mapping[str, object], ax=None, window: int = 10, title: str = "Training loss", logy: bool = False):
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


def show_images(images, labels=None, class_names: Sequence[str] | None = None, columns: int = 12, title: str | None = None):
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
