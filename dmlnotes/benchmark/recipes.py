"""Every loss of the collection as a benchmark recipe: how it is built and what is tuned.

A :class:`BenchmarkRecipe` builds its loss (and its paper's miner) from a dictionary of
settings. ``defaults`` are the settings the recipe always uses; each entry of ``grid``
overrides some of them, and the hyperparameter search tries every entry on validation
classes. The grids hold the parameters each paper tunes (margin, scale, temperature,
alpha/beta, ...), around the paper's or the lessons' values; three or four entries each,
so that the search fits a laptop.

``conventions`` says, for the table, what the loss measures: squared or plain distance,
normalised or not, and the units of its margin.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from torch import nn

from .. import losses as L
from ..miners import (
    BatchHardMiner,
    DistanceWeightedMiner,
    MultiSimilarityMiner,
    SemiHardNegativeMiner,
)


def _frozen(mapping: Mapping | None) -> Mapping:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class BenchmarkRecipe:
    """One loss under the benchmark's protocol.

    Attributes:
        name: the label in tables and plots.
        lesson: the notebook that teaches the loss.
        make_loss: ``(num_classes, embedding_dim, settings) -> loss``.
        make_miner: ``settings -> miner`` or None (only where the loss's paper mines).
        defaults: settings used unless a grid entry overrides them.
        grid: the search, a tuple of overrides (``({},)``: nothing to tune).
        conventions: distance, normalisation and margin units, for the table.
        samples_per_class: K of the P x K batches.
        loss_lr: learning rate of the loss's own parameters (proxies, class weights).
        metric: ``"euclidean"`` or ``"cosine"``, the retrieval metric.
        make_callbacks: ``(loss, steps) -> callbacks`` for :func:`~dmlnotes.training.fit`
            (a schedule of the loss's settings), or None.
    """

    name: str
    lesson: str
    make_loss: Callable[[int, int, Mapping], nn.Module]
    conventions: str
    defaults: Mapping = field(default_factory=dict)
    grid: tuple[Mapping, ...] = ({},)
    make_miner: Callable[[Mapping], nn.Module] | None = None
    samples_per_class: int = 4
    loss_lr: float | None = None
    metric: str = "euclidean"
    make_callbacks: Callable[[nn.Module, int], list] | None = None

    def __post_init__(self):
        object.__setattr__(self, "defaults", _frozen(self.defaults))
        object.__setattr__(self, "grid", tuple(_frozen(entry) for entry in self.grid))
        if not self.grid:
            raise ValueError(f"recipe {self.name!r}: the grid needs at least one entry ({{}} for nothing to tune)")
        for entry in self.grid:
            unknown = set(entry) - set(self.defaults)
            if unknown:
                raise ValueError(
                    f"recipe {self.name!r}: grid entry {dict(entry)} sets unknown settings {sorted(unknown)}"
                )
        if self.metric not in ("euclidean", "cosine"):
            raise ValueError(f"recipe {self.name!r}: metric must be 'euclidean' or 'cosine', got {self.metric!r}")

    def settings(self, overrides: Mapping | None = None) -> dict:
        """The defaults with ``overrides`` applied (a grid entry, or a chosen setting)."""
        overrides = dict(overrides or {})
        unknown = set(overrides) - set(self.defaults)
        if unknown:
            raise ValueError(f"recipe {self.name!r} has no settings {sorted(unknown)}; it has {sorted(self.defaults)}")
        return {**self.defaults, **overrides}

    def build(self, num_classes: int, embedding_dim: int, overrides: Mapping | None = None):
        """``(loss, miner or None)`` for these settings."""
        settings = self.settings(overrides)
        loss = self.make_loss(num_classes, embedding_dim, settings)
        miner = self.make_miner(settings) if self.make_miner is not None else None
        return loss, miner


def _heat_up(loss, steps: int) -> list:
    # Zhang et al.: alpha for the first three quarters of training, alpha / 4 for the rest.
    schedule = L.HeatUpSchedule(heat_up_step=max(1, (3 * steps) // 4), alpha_start=loss.alpha, alpha_end=loss.alpha / 4)
    return [schedule.as_callback(loss)]


_SQUARED_PAIR = "squared Euclidean, unnormalised (survey eq. (1)); margin in squared-distance units"
_FACENET = "squared Euclidean on normalised embeddings (FaceNet); margin in squared-distance units"
_COSINE = "cosine similarity of normalised embeddings"
_SOFTMAX = "softmax over class weights; "

RECIPES: dict[str, BenchmarkRecipe] = {
    recipe.name: recipe
    for recipe in [
        BenchmarkRecipe(
            "contrastive",
            "02",
            lambda c, d, s: L.ContrastiveLoss(margin=s["margin"]),
            _SQUARED_PAIR,
            defaults={"margin": 1.0},
            grid=({"margin": 0.5}, {"margin": 1.0}, {"margin": 2.0}),
        ),
        BenchmarkRecipe(
            "triplet (semi-hard)",
            "03",
            lambda c, d, s: L.TripletLoss(margin=s["margin"]),
            _FACENET,
            defaults={"margin": 0.2},
            grid=({"margin": 0.1}, {"margin": 0.2}, {"margin": 0.4}),
            make_miner=lambda s: SemiHardNegativeMiner(margin=s["margin"]),
            metric="cosine",
        ),
        BenchmarkRecipe(
            "triplet (batch-hard)",
            "03",
            lambda c, d, s: L.TripletLoss(margin=s["margin"]),
            _FACENET,
            defaults={"margin": 0.2},
            grid=({"margin": 0.1}, {"margin": 0.2}, {"margin": 0.4}),
            make_miner=lambda s: BatchHardMiner(),
            metric="cosine",
        ),
        BenchmarkRecipe(
            "lifted structure",
            "04",
            lambda c, d, s: L.LiftedStructureLoss(margin=s["margin"]),
            "plain Euclidean, unnormalised; margin in distance units",
            defaults={"margin": 1.0},
            grid=({"margin": 0.5}, {"margin": 1.0}, {"margin": 2.0}),
        ),
        BenchmarkRecipe(
            "N-pair",
            "05",
            lambda c, d, s: L.NPairLoss(l2_reg=s["l2_reg"], pairs="npair"),
            "dot products of unnormalised embeddings; no margin, an L2 penalty on the norms",
            defaults={"l2_reg": 0.002},
            grid=({"l2_reg": 0.0005}, {"l2_reg": 0.002}, {"l2_reg": 0.008}),
            samples_per_class=2,
        ),
        BenchmarkRecipe(
            "NCA",
            "00",
            lambda c, d, s: L.NCALoss(scale=s["scale"]),
            "squared Euclidean, unnormalised; no margin, a scale on the logits",
            defaults={"scale": 1.0},
            grid=({"scale": 0.5}, {"scale": 1.0}, {"scale": 2.0}),
        ),
        BenchmarkRecipe(
            "coupled clusters",
            "06",
            lambda c, d, s: L.CoupledClustersLoss(margin=s["margin"]),
            "squared Euclidean to the class centre, unnormalised; margin in squared-distance units",
            defaults={"margin": 1.0},
            grid=({"margin": 0.5}, {"margin": 1.0}, {"margin": 2.0}),
        ),
        BenchmarkRecipe(
            "center loss",
            "07",
            lambda c, d, s: L.CenterLoss(c, d, center_weight=s["center_weight"]),
            _SOFTMAX + "plain features, squared Euclidean centre term weighted by lambda",
            defaults={"center_weight": 0.1},
            grid=({"center_weight": 0.01}, {"center_weight": 0.1}, {"center_weight": 0.3}),
            loss_lr=1e-2,
        ),
        BenchmarkRecipe(
            "facility location",
            "08",
            lambda c, d, s: L.FacilityLocationLoss(gamma=s["gamma"]),
            "plain Euclidean on normalised embeddings; margin gamma times (1 - NMI)",
            defaults={"gamma": 1.0},
            grid=({"gamma": 0.5}, {"gamma": 1.0}, {"gamma": 2.0}),
            metric="cosine",
        ),
        BenchmarkRecipe(
            "ranked list",
            "10",
            lambda c, d, s: L.RankedListLoss(alpha=s["alpha"], margin=s["margin"]),
            "plain Euclidean on normalised embeddings; boundary alpha and margin in distance units",
            defaults={"alpha": 1.2, "margin": 0.4},
            grid=({"margin": 0.2}, {"margin": 0.4}, {"alpha": 1.0, "margin": 0.4}),
            metric="cosine",
        ),
        BenchmarkRecipe(
            "deep clustering",
            "10",
            lambda c, d, s: L.DeepClusteringLoss(),
            "dot products of normalised embeddings (Frobenius norm); nothing to tune",
            metric="cosine",
        ),
        BenchmarkRecipe(
            "proxy-NCA",
            "09",
            lambda c, d, s: L.ProxyNCALoss(c, d, scale=s["scale"]),
            "squared Euclidean to proxies, both normalised; a scale on the logits",
            defaults={"scale": 1.0},
            grid=({"scale": 1.0}, {"scale": 3.0}, {"scale": 9.0}),
            loss_lr=1e-2,
            metric="cosine",
        ),
        BenchmarkRecipe(
            "proxy-anchor",
            "15",
            lambda c, d, s: L.ProxyAnchorLoss(c, d, alpha=s["alpha"], margin=s["margin"]),
            "cosine to proxies; margin delta in cosine units, scale alpha",
            defaults={"alpha": 32.0, "margin": 0.1},
            grid=({"alpha": 16.0}, {"alpha": 32.0}, {"alpha": 32.0, "margin": 0.2}),
            loss_lr=1e-1,
            metric="cosine",  # Kim et al.: proxies at 100 times the network's rate
        ),
        BenchmarkRecipe(
            "normalized softmax",
            "11",
            lambda c, d, s: L.NormSoftmaxLoss(c, d, temperature=s["temperature"]),
            _SOFTMAX + "cosines divided by a temperature T; no margin",
            defaults={"temperature": 0.05},
            grid=({"temperature": 0.02}, {"temperature": 0.05}, {"temperature": 0.1}),
            loss_lr=1e-2,
            metric="cosine",
        ),
        BenchmarkRecipe(
            "heated-up softmax",
            "13",
            lambda c, d, s: L.HeatedUpSoftmaxLoss(c, d, alpha=s["alpha"]),
            _SOFTMAX + "cosines times alpha = 1/T, alpha / 4 for the last quarter of training",
            defaults={"alpha": 16.0},
            grid=({"alpha": 8.0}, {"alpha": 16.0}, {"alpha": 32.0}),
            loss_lr=1e-2,
            metric="cosine",
            make_callbacks=_heat_up,
        ),
        BenchmarkRecipe(
            "L2-softmax",
            "14",
            lambda c, d, s: L.L2SoftmaxLoss(c, d, alpha=s["alpha"]),
            _SOFTMAX + "features scaled to norm alpha, weights and bias free; no margin",
            defaults={"alpha": 16.0},
            grid=({"alpha": 8.0}, {"alpha": 16.0}, {"alpha": 32.0}),
            loss_lr=1e-2,
            metric="cosine",
        ),
        BenchmarkRecipe(
            "CosFace",
            "14",
            lambda c, d, s: L.CosFaceLoss(c, d, margin=s["margin"], scale=s["scale"]),
            _SOFTMAX + "scale s on cosines; margin m in cosine units",
            defaults={"margin": 0.35, "scale": 64.0},
            grid=({"margin": 0.1}, {"margin": 0.2}, {"margin": 0.35}),
            loss_lr=1e-2,
            metric="cosine",
        ),
        BenchmarkRecipe(
            "ArcFace",
            "14",
            lambda c, d, s: L.ArcFaceLoss(c, d, margin=s["margin"], scale=s["scale"]),
            _SOFTMAX + "scale s on cosines; margin m in radians (PML's is in degrees)",
            defaults={"margin": 0.5, "scale": 64.0},
            grid=({"margin": 0.1}, {"margin": 0.3}, {"margin": 0.5}),
            loss_lr=1e-2,
            metric="cosine",
        ),
        BenchmarkRecipe(
            "SphereFace",
            "14",
            lambda c, d, s: L.SphereFaceLoss(c, d, margin=s["margin"]),
            _SOFTMAX + "normalised weights, plain features; integer angle multiplier m",
            defaults={"margin": 4},
            grid=({"margin": 2}, {"margin": 3}, {"margin": 4}),
            loss_lr=1e-2,
            metric="cosine",
        ),
        BenchmarkRecipe(
            "L-softmax",
            "14",
            lambda c, d, s: L.LargeMarginSoftmaxLoss(c, d, margin=s["margin"]),
            _SOFTMAX + "plain features and weights; integer angle multiplier m",
            defaults={"margin": 4},
            grid=({"margin": 2}, {"margin": 3}, {"margin": 4}),
            loss_lr=1e-2,
            metric="cosine",
        ),
        BenchmarkRecipe(
            "multi-similarity",
            "15",
            lambda c, d, s: L.MultiSimilarityLoss(alpha=s["alpha"], beta=s["beta"], base=s["base"]),
            _COSINE + "; threshold lambda (base) in cosine units, miner margin epsilon",
            defaults={"alpha": 2.0, "beta": 50.0, "base": 0.5, "epsilon": 0.1},
            grid=({}, {"beta": 40.0}, {"alpha": 1.0}, {"base": 0.6}),
            make_miner=lambda s: MultiSimilarityMiner(epsilon=s["epsilon"]),
            metric="cosine",
        ),
        BenchmarkRecipe(
            "circle",
            "15",
            lambda c, d, s: L.CircleLoss(margin=s["margin"], gamma=s["gamma"]),
            _COSINE + "; relaxation margin m in cosine units, scale gamma",
            defaults={"margin": 0.25, "gamma": 80.0},
            grid=({}, {"gamma": 256.0}, {"margin": 0.4}),
            metric="cosine",
        ),
        BenchmarkRecipe(
            "binomial deviance",
            "15",
            lambda c, d, s: L.BinomialDevianceLoss(alpha=s["alpha"], beta=s["beta"], cost=s["cost"]),
            _COSINE + "; threshold beta in cosine units, slope alpha, negative cost C",
            defaults={"alpha": 2.0, "beta": 0.5, "cost": 25.0},
            grid=({}, {"cost": 10.0}, {"alpha": 4.0}),
            metric="cosine",
        ),
        BenchmarkRecipe(
            "angular",
            "15",
            lambda c, d, s: L.AngularLoss(alpha=s["alpha"]),
            "normalised embeddings; angle alpha in degrees",
            defaults={"alpha": 40.0},
            grid=({"alpha": 36.0}, {"alpha": 40.0}, {"alpha": 45.0}),
            metric="cosine",
        ),
        BenchmarkRecipe(
            "margin (distance-weighted)",
            "15",
            lambda c, d, s: L.MarginLoss(margin=s["margin"], beta=s["beta"]),
            "plain Euclidean on normalised embeddings; margin alpha and learned boundary beta in distance units",
            defaults={"margin": 0.2, "beta": 1.2},
            grid=({}, {"margin": 0.1}, {"beta": 1.0}),
            make_miner=lambda s: DistanceWeightedMiner(),
            loss_lr=1e-2,
            metric="cosine",
        ),
    ]
}
"""The benchmark's recipes by name, in the order of the lessons."""


def resolve_recipes(names=None) -> list[BenchmarkRecipe]:
    """The recipes named (all by default), with a clear error for an unknown name."""
    if names is None:
        return list(RECIPES.values())
    unknown = [name for name in names if name not in RECIPES]
    if unknown:
        raise ValueError(f"unknown benchmark recipes {unknown}; expected some of {list(RECIPES)}")
    return [RECIPES[name] for name in names]
