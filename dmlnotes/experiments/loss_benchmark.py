"""Time forward plus backward of every loss beside pytorch-metric-learning's version.

Usage: ``make bench-losses`` or ``python -m dmlnotes.experiments.loss_benchmark``.

One batch of 256 embeddings of dimension 128 (64 classes x 4 samples). Each pair of
implementations runs with matching settings (same distance, normalisation, margin and
reduction) in the same process, timed with ``torch.utils.benchmark`` in interleaved
rounds (ours, theirs, theirs, ours, ...). The ratio is ours / theirs, the median over the
rounds: below 1 means dmlnotes is faster.

The last column compares the loss values. They differ where the implementations differ
by design: the contrastive loss's reduction (ours averages all pairs; PML averages the
non-zero positive and negative terms separately), the semi-hard miner (ours keeps the
hardest semi-hard negative per pair, PML every one), NCA on this batch of large
unnormalised embeddings (PML drops anchors whose positive probability underflows), the
ranked list loss by about 1e-3 (PML adds 1e-5 per column of the batch to its denominators,
256e-5 against a query's 3 positives; its ``imbalance=0.5`` halves the loss, so its value is
doubled here), the angular loss (PML does not normalise the negatives; equal on unit vectors)
and the distance-weighted miner (random draws; PML also draws the positives at random).
pytorch-metric-learning is a development dependency, installed by ``make``.

``--deep-clustering`` times the deep clustering loss instead, against its ``N x N`` form
``||V V^T - Y Y^T||_F^2`` over growing batches (``--sizes``, ``N / 4`` classes).
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..distances import EuclideanDistance, SquaredEuclideanDistance
from ..losses import (
    AngularLoss,
    ArcFaceLoss,
    BinomialDevianceLoss,
    CenterLoss,
    CircleLoss,
    ContrastiveLoss,
    CosFaceLoss,
    CoupledClustersLoss,
    DeepClusteringLoss,
    FacilityLocationLoss,
    L2SoftmaxLoss,
    LargeMarginSoftmaxLoss,
    LiftedStructureLoss,
    MarginLoss,
    MultiSimilarityLoss,
    NCALoss,
    NormFaceLoss,
    NormSoftmaxLoss,
    NPairLoss,
    ProxyAnchorLoss,
    ProxyNCALoss,
    RankedListLoss,
    SphereFaceLoss,
    TripletLoss,
)
from ..miners import (
    AllTripletsMiner,
    BatchHardMiner,
    DistanceWeightedMiner,
    MultiSimilarityMiner,
    SemiHardNegativeMiner,
)

Step = Callable[[Tensor, Tensor], Tensor]


@dataclass
class Pairing:
    """Our loss and pytorch-metric-learning's, each as ``(embeddings, labels) -> loss``."""

    name: str
    ours: Step
    theirs: Step | None


def with_miner(loss, miner) -> Step:
    return lambda embeddings, labels: loss(embeddings, labels, miner(embeddings, labels))


def pairings(num_classes: int, dim: int) -> list[Pairing]:
    from pytorch_metric_learning import distances as pml_distances
    from pytorch_metric_learning import losses as pml
    from pytorch_metric_learning import miners as pml_miners

    squared_on_sphere = pml_distances.LpDistance(power=2, normalize_embeddings=True)
    euclidean = pml_distances.LpDistance(normalize_embeddings=False)
    triplet_ours = TripletLoss(margin=0.2, reduction="mean_nonzero")
    triplet_theirs = pml.TripletMarginLoss(margin=0.2, distance=squared_on_sphere)
    proxy_ours = ProxyNCALoss(num_classes, dim, include_positive_in_denominator=True)
    proxy_theirs = pml.ProxyNCALoss(num_classes, dim)
    anchor_ours = ProxyAnchorLoss(num_classes, dim)
    anchor_theirs = pml.ProxyAnchorLoss(num_classes, dim)
    softmax_ours = NormSoftmaxLoss(num_classes, dim, temperature=0.05)
    softmax_theirs = pml.NormalizedSoftmaxLoss(num_classes, dim, temperature=0.05)
    # PML has no lambda: ours with lambda = 0; scale 1 is PML's default.
    lsoftmax_ours = LargeMarginSoftmaxLoss(num_classes, dim, margin=4, lambda_=0.0)
    lsoftmax_theirs = pml.LargeMarginSoftmaxLoss(num_classes, dim, margin=4)
    sphereface_ours = SphereFaceLoss(num_classes, dim, margin=4, lambda_=0.0)
    sphereface_theirs = pml.SphereFaceLoss(num_classes, dim, margin=4)
    with torch.no_grad():  # the same proxies and class weights, so the values can be compared
        proxy_ours.weight.copy_(proxy_theirs.proxies)
        anchor_ours.weight.copy_(anchor_theirs.proxies)
        softmax_ours.weight.copy_(softmax_theirs.W.T)
        lsoftmax_ours.weight.copy_(lsoftmax_theirs.W.T)
        sphereface_ours.weight.copy_(sphereface_theirs.W.T)
    normface_ours = NormFaceLoss(num_classes, dim, scale=16.0)
    normface_theirs = pml.NormalizedSoftmaxLoss(num_classes, dim, temperature=1 / 16)
    cosface_ours = CosFaceLoss(num_classes, dim, margin=0.35, scale=64.0)
    cosface_theirs = pml.CosFaceLoss(num_classes, dim, margin=0.35, scale=64.0)
    arcface_ours = ArcFaceLoss(num_classes, dim, margin=0.5, scale=64.0)
    arcface_theirs = pml.ArcFaceLoss(num_classes, dim, margin=math.degrees(0.5), scale=64.0)  # PML: degrees
    with torch.no_grad():  # the same proxies and class weights, so the values can be compared
        proxy_ours.weight.copy_(proxy_theirs.proxies)
        for ours, theirs in [
            (softmax_ours, softmax_theirs),
            (normface_ours, normface_theirs),
            (cosface_ours, cosface_theirs),
            (arcface_ours, arcface_theirs),
        ]:
            ours.weight.copy_(theirs.W.T)  # PML stores W as (embedding_size, num_classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PML warns that T_n > 5 may overflow its unshifted weights
        ranked_theirs = pml.RankedListLoss(margin=0.4, Tn=10.0, imbalance=0.5, alpha=1.2)
    return [
        Pairing(
            "contrastive (plain distance)",
            ContrastiveLoss(margin=1.0, distance=EuclideanDistance()),
            pml.ContrastiveLoss(pos_margin=0.0, neg_margin=1.0, distance=euclidean),
        ),
        Pairing("triplet, all triplets", triplet_ours, triplet_theirs),
        Pairing(
            "triplet + semi-hard miner",
            with_miner(triplet_ours, SemiHardNegativeMiner(margin=0.2)),
            with_miner(triplet_theirs, pml_miners.TripletMarginMiner(0.2, "semihard", distance=squared_on_sphere)),
        ),
        Pairing(
            "triplet + batch-hard miner",
            with_miner(triplet_ours, BatchHardMiner(SquaredEuclideanDistance(normalize_embeddings=True))),
            with_miner(triplet_theirs, pml_miners.BatchHardMiner(distance=squared_on_sphere)),
        ),
        Pairing(
            "lifted structure (smooth)",
            LiftedStructureLoss(margin=1.0),
            pml.LiftedStructureLoss(neg_margin=1.0, pos_margin=0.0, distance=euclidean),
        ),
        Pairing(
            "N-pair (Sohn's batch, no L2)",
            NPairLoss(l2_reg=0.0, pairs="npair"),
            _npair_theirs(pml.NPairsLoss(distance=pml_distances.DotProductSimilarity(normalize_embeddings=False))),
        ),
        Pairing("angular (smooth, 40 degrees)", AngularLoss(alpha=40.0), pml.AngularLoss(alpha=40)),
        Pairing(
            "margin, all triplets' pairs",
            with_miner(MarginLoss(), AllTripletsMiner()),
            pml.MarginLoss(margin=0.2, beta=1.2, learn_beta=True),
        ),
        Pairing(
            "margin + distance-weighted miner",
            with_miner(MarginLoss(), DistanceWeightedMiner(seed=0)),
            with_miner(pml.MarginLoss(margin=0.2, beta=1.2, learn_beta=True), pml_miners.DistanceWeightedMiner()),
        ),
        Pairing("NCA", NCALoss(), pml.NCALoss(distance=pml_distances.LpDistance(power=2, normalize_embeddings=False))),
        Pairing("coupled clusters", CoupledClustersLoss(margin=1.0), None),
        Pairing("facility location (greedy + refinement)", FacilityLocationLoss(), None),
        Pairing("center loss (Wen's rule)", CenterLoss(num_classes, dim), None),
        Pairing(
            "ranked list (differentiated weights)",
            RankedListLoss(alpha=1.2, margin=0.4, negative_temperature=10.0, weights_as_constants=False),
            lambda embeddings, labels: 2.0 * ranked_theirs(embeddings, labels),  # L_P + L_N, not their mean
        ),
        Pairing("deep clustering", DeepClusteringLoss(), None),
        Pairing("proxy-NCA (eq. 14)", proxy_ours, proxy_theirs),
        Pairing("proxy-anchor", anchor_ours, anchor_theirs),
        Pairing("normalized softmax", softmax_ours, softmax_theirs),
        Pairing("L-softmax (m = 4)", lsoftmax_ours, lsoftmax_theirs),
        Pairing("SphereFace (m = 4)", sphereface_ours, sphereface_theirs),
        Pairing("multi-similarity", MultiSimilarityLoss(), pml.MultiSimilarityLoss()),
        Pairing(
            "multi-similarity + its miner",
            with_miner(MultiSimilarityLoss(), MultiSimilarityMiner()),
            with_miner(pml.MultiSimilarityLoss(), pml_miners.MultiSimilarityMiner()),
        ),
        Pairing("circle (m = 0.25, gamma = 256)", CircleLoss(), pml.CircleLoss(m=0.25, gamma=256.0)),
        Pairing("binomial deviance", BinomialDevianceLoss(), None),
        Pairing("NormFace (s = 16)", normface_ours, normface_theirs),
        Pairing("CosFace (s = 64, m = 0.35)", cosface_ours, cosface_theirs),
        Pairing("ArcFace (s = 64, m = 0.5 rad)", arcface_ours, arcface_theirs),
        Pairing("L2-softmax (alpha = 16)", L2SoftmaxLoss(num_classes, dim), None),
    ]


def _npair_theirs(loss) -> Step:
    """pytorch-metric-learning's N-pair loss pairs the first two samples of each class too."""
    from ..losses import split_anchor_positive

    def step(embeddings: Tensor, labels: Tensor) -> Tensor:
        anchors, positives, classes = split_anchor_positive(embeddings, labels)
        return loss(torch.cat([anchors, positives]), torch.cat([classes, classes]))

    return step


def _relative_difference(pairing: Pairing, embeddings: Tensor, labels: Tensor) -> float:
    """|ours - theirs| / |theirs| of the loss values on the batch (NaN without a counterpart).

    Not zero where the two implementations differ by design (see the module docstring).
    """
    if pairing.theirs is None:
        return float("nan")
    with torch.no_grad():
        ours, theirs = float(pairing.ours(embeddings, labels)), float(pairing.theirs(embeddings, labels))
    return abs(ours - theirs) / max(abs(theirs), 1e-12)


def time_step(step: Step, embeddings: Tensor, labels: Tensor, min_run_time: float) -> float:
    """Median seconds of one forward and backward pass."""
    from torch.utils import benchmark

    def run():
        embeddings.grad = None
        step(embeddings, labels).backward()

    run()  # warm-up (and check that it runs)
    timer = benchmark.Timer(stmt="run()", globals={"run": run}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_run_time).median


def time_pairing(pairing: Pairing, embeddings: Tensor, labels: Tensor, rounds: int, min_run_time: float):
    """``(our median s, their median s, median ratio)`` over ``rounds`` interleaved rounds.

    Each round times both implementations back to back (alternating which goes first), so
    a slow spell of a noisy machine hits both sides of a ratio; the median over rounds
    discards the spells that hit one side only."""
    ours_times, theirs_times, ratios = [], [], []
    for round_index in range(rounds):
        if pairing.theirs is None:
            ours_times.append(time_step(pairing.ours, embeddings, labels, min_run_time))
            continue
        first_ours = round_index % 2 == 0
        order = (pairing.ours, pairing.theirs) if first_ours else (pairing.theirs, pairing.ours)
        a, b = (time_step(step, embeddings, labels, min_run_time) for step in order)
        ours, theirs = (a, b) if first_ours else (b, a)
        ours_times.append(ours)
        theirs_times.append(theirs)
        ratios.append(ours / theirs)
    median = lambda values: float(np.median(values)) if values else None  # noqa: E731
    return median(ours_times), median(theirs_times), median(ratios)


def deep_clustering_n_by_n(embeddings: Tensor, labels: Tensor) -> Tensor:
    """The deep clustering loss through its ``N x N`` matrices, divided by ``N`` like ``DeepClusteringLoss()``."""
    vectors = torch.nn.functional.normalize(embeddings, dim=1)
    same_class = (labels.unsqueeze(0) == labels.unsqueeze(1)).to(embeddings.dtype)
    return ((vectors @ vectors.T - same_class) ** 2).sum() / len(labels)


def deep_clustering_scaling(sizes: list[int], dim: int, rounds: int, min_run_time: float) -> list[tuple]:
    """``(N, classes, low-rank s, N x N s, ratio, relative difference)`` per batch size ``N``.

    ``N / 4`` classes of 4 samples (the P x K batches of the other losses); the low-rank form's
    cost does not depend on the number of classes."""
    rows = []
    for size in sizes:
        torch.manual_seed(0)
        classes = max(size // 4, 1)
        labels = torch.arange(size) % classes
        embeddings = torch.randn(size, dim, requires_grad=True)
        pairing = Pairing(f"deep clustering, N = {size}", DeepClusteringLoss(), deep_clustering_n_by_n)
        low_rank, n_by_n, ratio = time_pairing(pairing, embeddings, labels, rounds, min_run_time)
        rows.append((size, classes, low_rank, n_by_n, ratio, _relative_difference(pairing, embeddings, labels)))
    return rows


def print_deep_clustering_scaling(rows: list[tuple], dim: int, rounds: int) -> None:
    print(
        f"deep clustering, forward + backward, dimension {dim}, N / 4 classes, {torch.get_num_threads()} threads, "
        f"CPU; medians over {rounds} interleaved rounds"
    )
    print(f"{'N':>6}  {'classes':>7}  {'low-rank ms':>11}  {'N x N ms':>9}  {'ratio':>6}  {'values differ by':>16}")
    for size, classes, low_rank, n_by_n, ratio, difference in rows:
        print(
            f"{size:>6}  {classes:>7}  {1000 * low_rank:11.2f}  {1000 * n_by_n:9.2f}  {ratio:6.2f}  {difference:16.1e}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, default=64)
    parser.add_argument("--per-class", type=int, default=4)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument(
        "--rounds", type=int, default=7, help="interleaved rounds per pair (the median ratio is reported)"
    )
    parser.add_argument(
        "--min-run-time", type=float, default=0.1, help="seconds of timing per implementation and round"
    )
    parser.add_argument(
        "--deep-clustering",
        action="store_true",
        help="time the deep clustering loss against its N x N form over --sizes (with --dim) instead",
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024, 4096], help="batch sizes N")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's); 1 on a machine others share"
    )
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.deep_clustering:
        rows = deep_clustering_scaling(args.sizes, args.dim, args.rounds, args.min_run_time)
        print_deep_clustering_scaling(rows, args.dim, args.rounds)
        return 0
    torch.manual_seed(0)
    labels = torch.arange(args.classes).repeat_interleave(args.per_class)
    embeddings = torch.randn(len(labels), args.dim, requires_grad=True)
    print(
        f"forward + backward on {len(labels)} embeddings of dimension {args.dim} "
        f"({args.classes} classes x {args.per_class}), {torch.get_num_threads()} threads, CPU; "
        f"medians over {args.rounds} interleaved rounds"
    )
    rows = []
    for pairing in pairings(args.classes, args.dim):
        ours, theirs, ratio = time_pairing(pairing, embeddings, labels, args.rounds, args.min_run_time)
        rows.append((pairing.name, ours, theirs, ratio, _relative_difference(pairing, embeddings, labels)))
    width = max(len(r[0]) for r in rows)
    print(f"{'loss':<{width}}  {'dmlnotes ms':>11}  {'PML ms':>8}  {'ratio':>6}  {'values differ by':>16}")
    for name, ours, theirs, ratio, difference in rows:
        other = (
            f"{1000 * theirs:8.2f}  {ratio:6.2f}  {difference:16.1e}" if theirs else f"{'-':>8}  {'-':>6}  {'-':>16}"
        )
        print(f"{name:<{width}}  {1000 * ours:11.2f}  {other}")
    slower = [name for name, _, theirs, ratio, _ in rows if theirs and ratio >= 1]
    print("slower than pytorch-metric-learning (median ratio >= 1): " + (", ".join(slower) if slower else "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
