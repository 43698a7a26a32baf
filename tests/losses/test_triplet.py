"""Tests of dmlnotes.losses.triplet against a brute-force loop over triplets, hand-computed
cases, properties, miners' tuples, bad input, and pytorch-metric-learning's TripletMarginLoss."""

import pytest
import torch

from dmlnotes.distances import CosineSimilarity, EuclideanDistance, SquaredEuclideanDistance
from dmlnotes.losses import TripletLoss
from dmlnotes.miners import (
    AllTripletsMiner,
    BatchHardMiner,
    HardestNegativeMiner,
    RandomTripletsMiner,
    SemiHardNegativeMiner,
    count_triplets,
)
from loss_testing import (
    DTYPE_AND_TOL,
    assert_same_value_and_grad,
    check_empty_batch,
    random_embeddings,
    reduce_terms,
)

LABELS = torch.tensor([0, 1, 0, 2, 1, 0, 2, 3, 3, 1])


# Brute-force reference -------------------------------------------------------------
def pair_value(x, i, j, kind):
    """Distance or similarity between rows i and j, written out element by element."""
    if kind in ("cosine", "squared_unit"):
        u, v = x[i] / torch.sqrt((x[i] ** 2).sum()), x[j] / torch.sqrt((x[j] ** 2).sum())
        return (u * v).sum() if kind == "cosine" else ((u - v) ** 2).sum()
    squared = ((x[i] - x[j]) ** 2).sum()
    return squared if kind == "squared" else torch.sqrt(squared)


def all_triplets_by_loops(labels):
    n = len(labels)
    return [
        (a, p, q)
        for a in range(n)
        for p in range(n)
        for q in range(n)
        if a != p and labels[a] == labels[p] and labels[q] != labels[a]
    ]


def brute_terms(x, labels, margin, kind, swap=False, triplets=None):
    terms = []
    for a, p, q in all_triplets_by_loops(labels) if triplets is None else triplets:
        ap, an, pn = pair_value(x, a, p, kind), pair_value(x, a, q, kind), pair_value(x, p, q, kind)
        if kind == "cosine":
            term = an - ap + margin
            if swap:
                term = torch.maximum(term, pn - ap + margin)
        else:
            term = ap - an + margin
            if swap:
                term = torch.maximum(term, ap - pn + margin)
        terms.append(torch.clamp(term, min=0))
    return terms


def brute_triplet(x, labels, margin, kind, swap=False, reduction="mean", triplets=None):
    return reduce_terms(brute_terms(x, labels, margin, kind, swap, triplets), reduction)


def random_batch(dtype, seed=0):
    return random_embeddings(len(LABELS), 3, dtype, seed)


CONFIGS = {
    # name: (constructor kwargs, brute-force kwargs)
    "default_facenet": (dict(), dict(margin=0.2, kind="squared_unit")),
    "squared_unnormalised": (
        dict(margin=1.0, distance=SquaredEuclideanDistance()),
        dict(margin=1.0, kind="squared"),
    ),
    "euclidean_mean_nonzero": (
        dict(margin=0.5, distance=EuclideanDistance(), reduction="mean_nonzero"),
        dict(margin=0.5, kind="plain", reduction="mean_nonzero"),
    ),
    "cosine": (dict(margin=0.3, distance=CosineSimilarity()), dict(margin=0.3, kind="cosine")),
    "swap": (
        dict(margin=0.5, distance=EuclideanDistance(), swap=True),
        dict(margin=0.5, kind="plain", swap=True),
    ),
    "cosine_swap": (
        dict(margin=0.3, distance=CosineSimilarity(), swap=True),
        dict(margin=0.3, kind="cosine", swap=True),
    ),
}


@pytest.mark.parametrize("dtype, tol", DTYPE_AND_TOL)
@pytest.mark.parametrize("config", list(CONFIGS))
def test_matches_brute_force_values_gradients_and_stats(config, dtype, tol):
    loss_kwargs, brute_kwargs = CONFIGS[config]
    x = random_batch(dtype)
    loss_fn = TripletLoss(**loss_kwargs)
    value, _ = assert_same_value_and_grad(
        lambda e: loss_fn(e, LABELS),
        lambda e: brute_triplet(e, LABELS, **brute_kwargs),
        x,
        tol=dict(rtol=tol, atol=tol),
        grad_tol=dict(rtol=10 * tol, atol=10 * tol),
    )
    assert value.dtype == dtype
    brute_kwargs = {k: v for k, v in brute_kwargs.items() if k != "reduction"}
    num_active = sum(int(t > 0) for t in brute_terms(x, LABELS, **brute_kwargs))
    stats = loss_fn.last_stats
    assert stats.num_terms == count_triplets(LABELS) == len(all_triplets_by_loops(LABELS))
    assert stats.num_active == num_active
    assert 0 < num_active < stats.num_terms  # both sides of the hinge are exercised


def test_hand_computed_three_points():
    # 1-D embeddings 0, 2, 3 with labels 0, 0, 1, margin 1, squared distances, no normalisation:
    #   (a=0, p=1, n=2): d_ap^2 = 4, d_an^2 = 9 -> [4 + 1 - 9]_+ = 0
    #   (a=1, p=0, n=2): d_ap^2 = 4, d_an^2 = 1 -> [4 + 1 - 1]_+ = 4
    # mean = 2, mean over non-zero = 4. Plain distances: [2 + 1 - 3]_+ = 0, [2 + 1 - 1]_+ = 2 -> mean 1.
    x = torch.tensor([[0.0], [2.0], [3.0]])
    labels = torch.tensor([0, 0, 1])
    squared = TripletLoss(margin=1.0, distance=SquaredEuclideanDistance())
    assert squared(x, labels).item() == pytest.approx(2.0)
    assert (squared.last_stats.num_terms, squared.last_stats.num_active) == (2, 1)
    nonzero = TripletLoss(margin=1.0, distance=SquaredEuclideanDistance(), reduction="mean_nonzero")
    assert nonzero(x, labels).item() == pytest.approx(4.0)
    assert TripletLoss(margin=1.0, distance=EuclideanDistance())(x, labels).item() == pytest.approx(1.0)


def test_hand_computed_four_points():
    # 1-D embeddings 0, 2, 3, -1 with labels 0, 0, 1, 1, margin 1, squared distances:
    #   a=0, p=1 (d_ap^2 = 4): n=2 (9) -> 0,   n=3 (1) -> 4
    #   a=1, p=0 (4):          n=2 (1) -> 4,   n=3 (9) -> 0
    #   a=2, p=3 (16):         n=0 (9) -> 8,   n=1 (1) -> 16
    #   a=3, p=2 (16):         n=0 (1) -> 16,  n=1 (9) -> 8
    # sum 56 over 8 triplets -> 7; over the 6 non-zero ones -> 28/3.
    x = torch.tensor([[0.0], [2.0], [3.0], [-1.0]])
    labels = torch.tensor([0, 0, 1, 1])
    loss_fn = TripletLoss(margin=1.0, distance=SquaredEuclideanDistance())
    assert loss_fn(x, labels).item() == pytest.approx(7.0)
    assert (loss_fn.last_stats.num_terms, loss_fn.last_stats.num_active) == (8, 6)
    nonzero = TripletLoss(margin=1.0, distance=SquaredEuclideanDistance(), reduction="mean_nonzero")
    assert nonzero(x, labels).item() == pytest.approx(28 / 3)


def test_batch_permutation_invariance():
    x = random_batch(torch.float64)
    permutation = torch.randperm(len(LABELS), generator=torch.Generator().manual_seed(1))
    for loss_fn in (TripletLoss(), TripletLoss(swap=True, reduction="mean_nonzero")):
        torch.testing.assert_close(loss_fn(x, LABELS), loss_fn(x[permutation], LABELS[permutation]))


def test_zero_when_classes_are_separated_by_more_than_the_margin():
    # Classes in tight clusters (radius 0.05) 3 apart: d_an - d_ap > 2.8 > margin 1.
    jitter = 0.05 * torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    x = torch.cat([jitter, jitter + torch.tensor([3.0, 0.0]), jitter + torch.tensor([0.0, 3.0])])
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2])
    loss_fn = TripletLoss(margin=1.0, distance=EuclideanDistance())
    assert loss_fn(x, labels).item() == 0.0
    assert loss_fn.last_stats.num_terms == count_triplets(labels) == 3 * 3 * 2 * 6
    assert loss_fn.last_stats.num_active == 0


MINERS = {
    "all": AllTripletsMiner(),
    "random": RandomTripletsMiner(num_triplets=25, seed=0),
    "hardest_negative": HardestNegativeMiner(),
    "semihard": SemiHardNegativeMiner(margin=0.2),
    "batch_hard": BatchHardMiner(),
}


@pytest.mark.parametrize("name", list(MINERS))
def test_accepts_miner_triplets(name):
    x = random_batch(torch.float64)
    triplets = MINERS[name](x, LABELS)
    listed = list(zip(*(t.tolist() for t in triplets)))
    assert listed, "the miner should find triplets in this batch"
    loss_fn = TripletLoss()
    assert_same_value_and_grad(
        lambda e: loss_fn(e, LABELS, triplets),
        lambda e: brute_triplet(e, LABELS, 0.2, "squared_unit", triplets=listed),
        x,
    )
    assert loss_fn.last_stats.num_terms == len(listed)


def test_pairs_are_combined_into_triplets_sharing_the_anchor():
    x = random_batch(torch.float64)
    # Positive pairs (0, 2), (0, 5), (1, 4); negative pairs (0, 1), (0, 3), (4, 7), (6, 0).
    pairs = (torch.tensor([0, 0, 1]), torch.tensor([2, 5, 4]), torch.tensor([0, 0, 4, 6]), torch.tensor([1, 3, 7, 0]))
    # Anchor 0: 2 positives x 2 negatives; anchor 1: no negative pair; anchors 4, 6: no positive pair.
    listed = [(0, 2, 1), (0, 2, 3), (0, 5, 1), (0, 5, 3)]
    loss_fn = TripletLoss(margin=0.5, distance=EuclideanDistance())
    value = loss_fn(x, LABELS, pairs)
    torch.testing.assert_close(value, brute_triplet(x, LABELS, 0.5, "plain", triplets=listed))
    assert loss_fn.last_stats.num_terms == 4


@pytest.mark.parametrize("labels", [torch.arange(6), torch.zeros(6, dtype=torch.long)], ids=["distinct", "one_class"])
@pytest.mark.parametrize("reduction", ["mean", "mean_nonzero"])
def test_batch_without_triplets_gives_attached_zero_and_warns(labels, reduction):
    x = torch.randn(6, 4, requires_grad=True)
    check_empty_batch(TripletLoss(warn_if_empty=True, reduction=reduction), TripletLoss(), x, labels, match="triplet")


def test_all_triplets_trivial_gives_attached_zero_for_mean_nonzero():
    x = torch.tensor([[0.0], [0.1], [5.0], [5.1]], requires_grad=True)
    loss = TripletLoss(margin=0.5, distance=EuclideanDistance(), reduction="mean_nonzero")(
        x, torch.tensor([0, 0, 1, 1])
    )
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.all(x.grad == 0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(margin=-0.1), "margin"),
        (dict(margin=float("nan")), "margin"),
        (dict(margin=None), "margin"),
        (dict(distance="cosine"), "Distance"),
        (dict(reduction="median"), "reduction"),
        (dict(swap=1), "swap"),
    ],
)
def test_bad_parameters_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TripletLoss(**kwargs)


@pytest.mark.parametrize(
    "indices, message",
    [
        ((torch.tensor([0]), torch.tensor([2])), "tuple of 3"),
        ((torch.tensor([0, 2]), torch.tensor([2, 0]), torch.tensor([1])), "same length"),
        ((torch.tensor([0]), torch.tensor([2]), torch.tensor([-1])), "outside the batch"),
        ((torch.tensor([[0]]), torch.tensor([[2]]), torch.tensor([[1]])), "1-D"),
        ((torch.tensor([0]), torch.tensor([2]), torch.tensor([5])), "negative"),  # 5 has label 0 like 0
    ],
)
def test_bad_indices_tuple_raises(indices, message):
    with pytest.raises(ValueError, match=message):
        TripletLoss()(random_batch(torch.float32), LABELS, indices)


def test_bad_batch_raises():
    with pytest.raises(ValueError, match="embeddings"):
        TripletLoss()(torch.randn(10), LABELS)
    with pytest.raises(ValueError, match="labels"):
        TripletLoss()(torch.randn(10, 3), LABELS.float())


# Agreement with pytorch-metric-learning -------------------------------------------------
@pytest.mark.parametrize(
    "ours, pml_distance",
    [
        (dict(), dict(name="LpDistance", normalize_embeddings=True, power=2)),
        (dict(distance=EuclideanDistance()), dict(name="LpDistance", normalize_embeddings=False, power=1)),
        (dict(distance=CosineSimilarity()), dict(name="CosineSimilarity")),
    ],
    ids=["facenet_default", "euclidean", "cosine"],
)
@pytest.mark.parametrize("reduction, reducer", [("mean", "MeanReducer"), ("mean_nonzero", "AvgNonZeroReducer")])
@pytest.mark.parametrize("swap", [False, True])
def test_agrees_with_pytorch_metric_learning(ours, pml_distance, reduction, reducer, swap):
    pytest.importorskip("pytorch_metric_learning")
    from pytorch_metric_learning import distances, losses, reducers

    kwargs = dict(pml_distance)
    distance = getattr(distances, kwargs.pop("name"))(**kwargs)
    margin = 0.3
    pml_loss = losses.TripletMarginLoss(
        margin=margin, swap=swap, distance=distance, reducer=getattr(reducers, reducer)(), triplets_per_anchor="all"
    )
    loss_fn = TripletLoss(margin=margin, swap=swap, reduction=reduction, **ours)
    x = random_batch(torch.float64, seed=5)
    assert_same_value_and_grad(lambda e: loss_fn(e, LABELS), lambda e: pml_loss(e, LABELS), x)
    # With a miner's triplets too.
    triplets = BatchHardMiner(distance=loss_fn.distance)(x, LABELS)
    torch.testing.assert_close(loss_fn(x, LABELS, triplets), pml_loss(x, LABELS, triplets))
