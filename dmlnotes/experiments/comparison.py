"""One fixed setup in which every lesson's loss is trained and measured, so lessons compare.

A fair comparison fixes everything but the loss (Musgrave et al. 2020, "A Metric
Learning Reality Check"): the same network (:class:`~dmlnotes.models.ConvEmbedding`,
64-d, width 16), the same data (glyphs, train classes; Recall@1 and MAP@R on the unseen
test classes), the same number of steps and batch size (64 images), the same optimiser
(Adam) and seed. A :class:`Recipe` holds what may differ: the loss, the miner, the
batch layout (N-pair needs two images per class), the learning rate of the loss's own
parameters, and the metric used to retrieve (cosine for losses that normalise).

Each lesson calls :func:`compare` with its own loss and those of the earlier lessons;
the runs are short (a few seconds each on a laptop CPU), so the table is recomputed,
never copied.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
from torch import nn

from ..data import ClassBalancedBatchSampler, class_disjoint_split
from ..device import get_device, seed_everything
from ..distances import EuclideanDistance
from ..losses import (
    ContrastiveLoss,
    CoupledClustersLoss,
    LiftedStructureLoss,
    NCALoss,
    NormSoftmaxLoss,
    NPairLoss,
    ProxyNCALoss,
    TripletLoss,
)
from ..metrics import map_at_r, recall_at_k
from ..miners import BatchHardMiner, SemiHardNegativeMiner
from ..models import ConvEmbedding
from ..training import embed, fit

STEPS = 150
EMBEDDING_DIM = 64
BATCH_SIZE = 64
WIDTH = 16


@dataclass(frozen=True)
class Recipe:
    """How one loss is trained in the shared setup.

    Attributes:
        name: the label in tables and plots.
        lesson: the notebook that teaches it (``"03"``).
        make_loss: ``(num_train_classes, embedding_dim) -> loss module``.
        make_miner: ``() -> miner`` or None.
        samples_per_class: K of the P x K batches (P = 64 / K).
        loss_lr: learning rate of the loss's parameters (proxies, class weights).
        metric: ``"euclidean"`` or ``"cosine"`` for retrieval.
    """

    name: str
    lesson: str
    make_loss: Callable[[int, int], nn.Module]
    make_miner: Callable[[], nn.Module] | None = None
    samples_per_class: int = 4
    loss_lr: float | None = None
    metric: str = "euclidean"


RECIPES: dict[str, Recipe] = {
    recipe.name: recipe
    for recipe in [
        Recipe("NCA", "00", lambda c, d: NCALoss()),
        Recipe("contrastive", "02", lambda c, d: ContrastiveLoss(margin=1.0)),
        Recipe("triplet (all)", "03", lambda c, d: TripletLoss(margin=0.2), metric="cosine"),
        Recipe(
            "triplet (semi-hard)", "03", lambda c, d: TripletLoss(margin=0.2),
            make_miner=lambda: SemiHardNegativeMiner(margin=0.2), metric="cosine",
        ),
        Recipe(
            "triplet (batch-hard)", "03", lambda c, d: TripletLoss(margin=0.2),
            make_miner=lambda: BatchHardMiner(), metric="cosine",
        ),
        # Hermans et al.'s own convention: plain distances on unnormalised embeddings.
        Recipe(
            "triplet (batch-hard, plain distance)", "03",
            lambda c, d: TripletLoss(margin=0.2, distance=EuclideanDistance(normalize_embeddings=False)),
            make_miner=lambda: BatchHardMiner(distance=EuclideanDistance(normalize_embeddings=False)),
        ),
        Recipe("lifted structure", "04", lambda c, d: LiftedStructureLoss(margin=1.0)),
        Recipe("N-pair", "05", lambda c, d: NPairLoss(l2_reg=0.002, pairs="npair"), samples_per_class=2),
        Recipe("coupled clusters", "06", lambda c, d: CoupledClustersLoss(margin=1.0)),
        Recipe("proxy-NCA", "11", lambda c, d: ProxyNCALoss(c, d), loss_lr=1e-2, metric="cosine"),
        Recipe("normalized softmax", "11", lambda c, d: NormSoftmaxLoss(c, d, temperature=0.05), loss_lr=1e-2, metric="cosine"),
    ]
}


@dataclass
class ComparisonResult:
    """One recipe's outcome: retrieval on the test classes and the training time."""

    name: str
    lesson: str
    recall_at_1: float
    map_at_r: float
    seconds: float
    final_loss: float


@functools.lru_cache(maxsize=2)
def glyphs_split(images_per_class: int = 24):
    """Glyphs split class-disjointly: the first half of the classes train, the rest test."""
    from ..data.glyphs import load_glyphs

    return class_disjoint_split(load_glyphs(images_per_class=images_per_class))


def train_and_evaluate(
    recipe: Recipe | str,
    steps: int = STEPS,
    seed: int = 0,
    device=None,
    train_set=None,
    test_set=None,
    embedding_dim: int = EMBEDDING_DIM,
) -> ComparisonResult:
    """Train a fresh network with ``recipe`` in the shared setup and measure it."""
    recipe = RECIPES[recipe] if isinstance(recipe, str) else recipe
    if train_set is None or test_set is None:
        train_set, test_set = glyphs_split()
    device = get_device(device)
    seed_everything(seed)
    model = ConvEmbedding(embedding_dim, width=WIDTH)
    loss_fn = recipe.make_loss(train_set.num_classes, embedding_dim)
    miner = recipe.make_miner() if recipe.make_miner else None
    sampler = ClassBalancedBatchSampler(
        train_set.labels, BATCH_SIZE // recipe.samples_per_class, recipe.samples_per_class, seed=seed
    )
    start = time.perf_counter()
    history = fit(
        model, loss_fn, train_set, miner=miner, batch_sampler=sampler, steps=steps, lr=1e-3,
        loss_lr=recipe.loss_lr, device=device, progress=False,
    )
    embeddings = embed(model, test_set.inputs, device=device)
    return ComparisonResult(
        name=recipe.name,
        lesson=recipe.lesson,
        recall_at_1=recall_at_k(embeddings, test_set.labels, ks=1, metric=recipe.metric)[1],
        map_at_r=map_at_r(embeddings, test_set.labels, metric=recipe.metric),
        seconds=time.perf_counter() - start,
        final_loss=sum(history.losses[-10:]) / min(10, len(history.losses)),
    )


def compare(recipes: Sequence[Recipe | str], steps: int = STEPS, seed: int = 0, device=None) -> list[ComparisonResult]:
    """Train and measure each recipe in the shared setup, in order."""
    return [train_and_evaluate(recipe, steps=steps, seed=seed, device=device) for recipe in recipes]


def format_results(results: Sequence[ComparisonResult]) -> str:
    """A plain-text table: lesson, loss, Recall@1 and MAP@R in percent, seconds."""
    width = max(len(r.name) for r in results)
    lines = [f"{'lesson':<6}  {'loss':<{width}}  {'R@1 %':>6}  {'MAP@R %':>7}  {'seconds':>7}"]
    for r in results:
        lines.append(f"{r.lesson:<6}  {r.name:<{width}}  {100 * r.recall_at_1:6.1f}  {100 * r.map_at_r:7.1f}  {r.seconds:7.1f}")
    return "\n".join(lines)


def plot_results(results: Sequence[ComparisonResult], highlight: str | None = None, ax=None):
    """Horizontal bars of Recall@1 per loss; ``highlight`` names this lesson's loss."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 0.35 * len(results) + 1.0))
    names = [f"{r.lesson} {r.name}" for r in results]
    values = [100 * r.recall_at_1 for r in results]
    colors = ["tab:orange" if r.name == highlight else "tab:blue" for r in results]
    ax.barh(names, values, color=colors)
    ax.invert_yaxis()
    for y, value in enumerate(values):
        ax.text(value + 0.5, y, f"{value:.1f}", va="center", fontsize=8)
    ax.set_xlabel("Recall@1 on glyphs test classes (%)")
    ax.set_xlim(0, 100)
    ax.set_title(f"Same network, data and {STEPS} steps; only the loss changes", fontsize=10)
    return ax


__all__ = [
    "Recipe",
    "RECIPES",
    "ComparisonResult",
    "glyphs_split",
    "train_and_evaluate",
    "compare",
    "format_results",
    "plot_results",
]
