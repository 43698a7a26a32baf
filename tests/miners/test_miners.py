"""Tests of dmlnotes.miners: validity of every tuple, the selection rule of each miner
against brute force, hand-computed cases, count_triplets, bad input, and agreement with
pytorch-metric-learning's miners where their definitions match."""

import itertools

import pytest
import torch

from dmlnotes.distances import CosineSimilarity, EuclideanDistance, SquaredEuclideanDistance
from dmlnotes.miners import (
    AllTripletsMiner,
    BatchHardMiner,
    DistanceWeightedMiner,
    HardestNegativeMiner,
    MultiSimilarityMiner,
    RandomTripletsMiner,
    SemiHardNegativeMiner,
    all_triplet_indices,
    count_triplets,
    pairs_from_indices,
    triplets_from_indices,
)
from loss_testing import random_embeddings

LABELS = torch.tensor([0, 1, 0, 2, 1, 0, 2, 3, 3, 1, 4])  # class 4 has a single sample


def random_batch(seed=0, dtype=torch.float64):
    return random_embeddings(len(LABELS), 4, dtype, seed)


def brute_matrix(x, kind):
    """Pairwise distances (or similarities) by a double loop."""
    n = x.shape[0]
    out = torch.zeros(n, n, dtype=x.dtype)
    for i in range(n):
        for j in range(n):
            if kind == "cosine":
                out[i, j] = (x[i] @ x[j]) / (x[i].norm() * x[j].norm())
            elif kind == "squared_unit":
                out[i, j] = ((x[i] / x[i].norm() - x[j] / x[j].norm()) ** 2).sum()
            else:
                out[i, j] = (x[i] - x[j]).norm()
    return out


def brute_triplets(labels):
    n = len(labels)
    return {
        (a, p, q)
        for a, p, q in itertools.product(range(n), repeat=3)
        if a != p and labels[a] == labels[p] and labels[q] != labels[a]
    }


def as_set(triplets):
    return set(zip(*(t.tolist() for t in triplets)))


def assert_valid(triplets, labels, embeddings):
    anchors, positives, negatives = triplets
    for index in triplets:
        assert index.dtype == torch.long and index.device == embeddings.device and not index.requires_grad
        assert index.shape == anchors.shape
    assert torch.all(anchors != positives)
    assert torch.all(labels[anchors] == labels[positives])
    assert torch.all(labels[anchors] != labels[negatives])


# count_triplets and the all-triplets miner -------------------------------------------
@pytest.mark.parametrize(
    "labels",
    [
        LABELS,
        torch.tensor([0, 0, 0, 0, 1]),
        torch.arange(5),
        torch.zeros(4, dtype=torch.long),
        torch.tensor([7]),
        torch.tensor([], dtype=torch.long),
        torch.randint(0, 4, (17,), generator=torch.Generator().manual_seed(0)),
    ],
)
def test_count_triplets_matches_enumeration(labels):
    expected = len(brute_triplets(labels.tolist()))
    assert count_triplets(labels) == expected
    assert count_triplets(labels.tolist()) == expected
    assert all_triplet_indices(labels)[0].numel() == expected


def test_count_triplets_hand_computed():
    # P x K batch with P = 4 classes of K = 3: n = 12, each class gives 3 * 2 * 9 = 54, total 216.
    assert count_triplets(torch.arange(4).repeat_interleave(3)) == 216


def test_count_triplets_rejects_2d_labels():
    with pytest.raises(ValueError, match="labels"):
        count_triplets(torch.zeros(2, 2, dtype=torch.long))


def test_all_triplets_miner_returns_every_valid_triplet_once():
    x = random_batch()
    miner = AllTripletsMiner()
    triplets = miner(x, LABELS)
    assert_valid(triplets, LABELS, x)
    assert as_set(triplets) == brute_triplets(LABELS.tolist())
    assert miner.last_num_triplets == count_triplets(LABELS) == triplets[0].numel()


# Properties every miner shares ---------------------------------------------------------
MINERS = {
    "all": lambda: AllTripletsMiner(),
    "random_total": lambda: RandomTripletsMiner(num_triplets=30, seed=0),
    "random_per_anchor": lambda: RandomTripletsMiner(per_anchor=3, seed=0),
    "hardest_negative": lambda: HardestNegativeMiner(),
    "semihard": lambda: SemiHardNegativeMiner(margin=0.5),
    "semihard_random": lambda: SemiHardNegativeMiner(margin=0.5, selection="random", seed=0),
    "batch_hard": lambda: BatchHardMiner(),
    "distance_weighted": lambda: DistanceWeightedMiner(seed=0),
}


@pytest.mark.parametrize("name", list(MINERS))
def test_miner_returns_valid_long_tuples_without_gradient(name):
    miner = MINERS[name]()
    x = random_batch(dtype=torch.float32).requires_grad_(True)
    triplets = miner(x, LABELS)
    assert len(triplets) == 3
    assert_valid(triplets, LABELS, x)
    assert triplets[0].numel() > 0
    assert miner.last_num_triplets == triplets[0].numel()
    assert x.grad is None


@pytest.mark.parametrize("name", list(MINERS))
@pytest.mark.parametrize(
    "labels",
    [torch.arange(6), torch.zeros(6, dtype=torch.long), torch.tensor([2]), torch.tensor([], dtype=torch.long)],
    ids=["distinct", "one_class", "one_sample", "no_sample"],
)
def test_miner_on_batch_without_triplets_returns_empty_long_tensors(name, labels):
    miner = MINERS[name]()
    x = torch.randn(len(labels), 3)
    triplets = miner(x, labels)
    assert all(t.dtype == torch.long and t.numel() == 0 for t in triplets)
    assert miner.last_num_triplets == 0


@pytest.mark.parametrize("name", list(MINERS))
def test_miner_rejects_bad_batches(name):
    miner = MINERS[name]()
    with pytest.raises(ValueError, match="embeddings"):
        miner(torch.randn(11), LABELS)
    with pytest.raises(ValueError, match="batch size"):
        miner(torch.randn(10, 3), LABELS)
    with pytest.raises(ValueError, match="labels"):
        miner(torch.randn(11, 3), LABELS.float())


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: SemiHardNegativeMiner(margin=-0.1), "margin"),
        (lambda: SemiHardNegativeMiner(margin=0.0), "margin must be > 0"),
        (lambda: SemiHardNegativeMiner(margin=float("inf")), "margin"),
        (lambda: SemiHardNegativeMiner(selection="hardest_one"), "selection"),
        (lambda: SemiHardNegativeMiner(seed=0.5), "seed"),
        (lambda: BatchHardMiner(distance="euclidean"), "Distance"),
        (lambda: HardestNegativeMiner(distance=torch.nn.PairwiseDistance()), "Distance"),
        (lambda: RandomTripletsMiner(), "exactly one"),
        (lambda: RandomTripletsMiner(num_triplets=3, per_anchor=2), "exactly one"),
        (lambda: RandomTripletsMiner(num_triplets=0), "positive integer"),
        (lambda: RandomTripletsMiner(per_anchor=1.5), "positive integer"),
        (lambda: RandomTripletsMiner(per_anchor=2, seed="a"), "seed"),
    ],
)
def test_bad_parameters_raise(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# Random triplets -------------------------------------------------------------------------
def test_random_total_draws_distinct_valid_triplets_reproducibly():
    x = random_batch()
    everything = brute_triplets(LABELS.tolist())
    first = RandomTripletsMiner(num_triplets=30, seed=3)(x, LABELS)
    chosen = as_set(first)
    assert len(chosen) == 30 and chosen <= everything
    again = RandomTripletsMiner(num_triplets=30, seed=3)(x, LABELS)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    other = RandomTripletsMiner(num_triplets=30, seed=4)(x, LABELS)
    assert as_set(other) != chosen
    # Asking for more than exist gives all of them.
    many = RandomTripletsMiner(num_triplets=10_000, seed=0)(x, LABELS)
    assert as_set(many) == everything and many[0].numel() == len(everything)


def test_random_per_anchor_covers_each_anchor_k_times_and_draws_uniformly():
    labels = torch.tensor([0, 0, 0, 1, 1, 2])
    k = 3000
    anchors, positives, negatives = RandomTripletsMiner(per_anchor=k, seed=0)(torch.randn(6, 2), labels)
    # Anchors with a positive and a negative: 0..4 (sample 5 is alone in class 2).
    assert torch.equal(torch.bincount(anchors, minlength=6), torch.tensor([k] * 5 + [0]))
    # Anchor 0: positives 1, 2 (1/2 each); negatives 3, 4, 5 (1/3 each). Tolerance ~ 5 sigma.
    from_zero = anchors == 0
    positive_share = torch.bincount(positives[from_zero], minlength=6)[[1, 2]] / k
    negative_share = torch.bincount(negatives[from_zero], minlength=6)[[3, 4, 5]] / k
    assert torch.allclose(positive_share, torch.full((2,), 1 / 2, dtype=positive_share.dtype), atol=0.05)
    assert torch.allclose(negative_share, torch.full((3,), 1 / 3, dtype=negative_share.dtype), atol=0.05)


def test_random_uses_global_generator_without_seed():
    x = random_batch()
    torch.manual_seed(11)
    first = RandomTripletsMiner(num_triplets=10)(x, LABELS)
    torch.manual_seed(11)
    second = RandomTripletsMiner(num_triplets=10)(x, LABELS)
    assert all(torch.equal(a, b) for a, b in zip(first, second))


# Hardest negative ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "distance, kind",
    [(None, "squared_unit"), (EuclideanDistance(), "plain"), (CosineSimilarity(), "cosine")],
    ids=["default", "euclidean", "cosine"],
)
def test_hardest_negative_is_the_anchors_closest_negative(distance, kind):
    x = random_batch()
    triplets = HardestNegativeMiner(distance=distance)(x, LABELS)
    assert_valid(triplets, LABELS, x)
    matrix = brute_matrix(x, kind)
    n = len(LABELS)
    closest = max if kind == "cosine" else min
    for a, _p, q in as_set(triplets):
        best = closest(matrix[a, j].item() for j in range(n) if LABELS[j] != LABELS[a])
        assert matrix[a, q].item() == pytest.approx(best)
    # Every ordered positive pair appears once (every anchor here has negatives).
    pairs = [(a, p) for a, p, _ in zip(*(t.tolist() for t in triplets))]
    assert sorted(pairs) == sorted({(a, p) for a, p, _ in brute_triplets(LABELS.tolist())})


def test_hardest_negative_hand_computed():
    # 1-D points 0, 2, 3, -1 with labels 0, 0, 1, 1 (plain distances):
    # anchor 0: negatives 2 (d 3), 3 (d 1) -> 3;  anchor 1: 2 (d 1), 3 (d 3) -> 2;
    # anchor 2: 0 (d 3), 1 (d 1) -> 1;            anchor 3: 0 (d 1), 1 (d 3) -> 0.
    x = torch.tensor([[0.0], [2.0], [3.0], [-1.0]])
    triplets = HardestNegativeMiner(distance=EuclideanDistance())(x, torch.tensor([0, 0, 1, 1]))
    assert as_set(triplets) == {(0, 1, 3), (1, 0, 2), (2, 3, 1), (3, 2, 0)}


# Semi-hard -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "distance, kind, margin",
    [(None, "squared_unit", 0.5), (EuclideanDistance(), "plain", 0.8), (CosineSimilarity(), "cosine", 0.3)],
    ids=["default", "euclidean", "cosine"],
)
def test_semihard_negatives_lie_in_the_band_and_the_hardest_is_chosen(distance, kind, margin):
    x = random_batch()
    triplets = SemiHardNegativeMiner(margin=margin, distance=distance)(x, LABELS)
    assert_valid(triplets, LABELS, x)
    matrix = brute_matrix(x, kind)
    sign = -1.0 if kind == "cosine" else 1.0  # turn a similarity into a distance-like score
    score = sign * matrix

    def band(a, p):
        return [
            q for q in range(len(LABELS)) if LABELS[q] != LABELS[a] and score[a, p] < score[a, q] < score[a, p] + margin
        ]

    kept = {}
    for a, p, q in as_set(triplets):
        assert score[a, p] < score[a, q] < score[a, p] + margin
        assert score[a, q].item() == pytest.approx(min(score[a, j].item() for j in band(a, p)))
        kept[(a, p)] = q
    expected_pairs = {(a, p) for a, p, _ in brute_triplets(LABELS.tolist()) if band(a, p)}
    assert set(kept) == expected_pairs
    assert len(kept) == triplets[0].numel()  # one triplet per pair
    assert 0 < len(expected_pairs) < len({(a, p) for a, p, _ in brute_triplets(LABELS.tolist())})


def test_semihard_random_selection_stays_in_band_and_varies():
    x = random_batch()
    margin = 1.0
    matrix = brute_matrix(x, "squared_unit")
    hardest = as_set(SemiHardNegativeMiner(margin=margin)(x, LABELS))
    seen = set()
    for seed in range(5):
        chosen = as_set(SemiHardNegativeMiner(margin=margin, selection="random", seed=seed)(x, LABELS))
        assert {(a, p) for a, p, _ in chosen} == {(a, p) for a, p, _ in hardest}
        for a, p, q in chosen:
            assert matrix[a, p] < matrix[a, q] < matrix[a, p] + margin
        seen |= chosen
    assert len(seen) > len(hardest)  # the random choice is not always the hardest


def test_semihard_hand_computed():
    # 1-D points 0, 2, 3, -1 with labels 0, 0, 1, 1, plain distances, margin 1.5:
    #   (0, 1): d_ap = 2, band (2, 3.5): negative 2 (d 3) yes, 3 (d 1) no  -> (0, 1, 2)
    #   (1, 0): d_ap = 2: negative 3 (d 3) yes, 2 (d 1) no                 -> (1, 0, 3)
    #   (2, 3), (3, 2): d_ap = 4, band (4, 5.5): negatives at 3 and 1 -> none, dropped.
    x = torch.tensor([[0.0], [2.0], [3.0], [-1.0]])
    miner = SemiHardNegativeMiner(margin=1.5, distance=EuclideanDistance())
    assert as_set(miner(x, torch.tensor([0, 0, 1, 1]))) == {(0, 1, 2), (1, 0, 3)}
    assert miner.last_num_triplets == 2


# Batch hard ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "distance, kind",
    [(None, "squared_unit"), (EuclideanDistance(), "plain"), (CosineSimilarity(), "cosine")],
    ids=["default", "euclidean", "cosine"],
)
def test_batch_hard_picks_farthest_positive_and_closest_negative(distance, kind):
    x = random_batch()
    triplets = BatchHardMiner(distance=distance)(x, LABELS)
    assert_valid(triplets, LABELS, x)
    matrix = brute_matrix(x, kind)
    n = len(LABELS)
    farthest, closest = (min, max) if kind == "cosine" else (max, min)
    anchors = triplets[0].tolist()
    # One triplet per anchor that has a positive: every sample except the lone sample 10.
    assert anchors == list(range(10))
    for a, p, q in as_set(triplets):
        assert matrix[a, p].item() == pytest.approx(
            farthest(matrix[a, j].item() for j in range(n) if j != a and LABELS[j] == LABELS[a])
        )
        assert matrix[a, q].item() == pytest.approx(
            closest(matrix[a, j].item() for j in range(n) if LABELS[j] != LABELS[a])
        )


def test_batch_hard_hand_computed():
    # 1-D points 0, 2, 3, -1, 6 with labels 0, 0, 1, 1, 1 (plain distances):
    #   anchor 0: positive 1 (only one); negatives 2 (3), 3 (1), 4 (6) -> 3
    #   anchor 2: positives 3 (4), 4 (3) -> 3; negatives 0 (3), 1 (1) -> 1
    #   anchor 4: positives 2 (3), 3 (7) -> 3; negatives 0 (6), 1 (4) -> 1
    x = torch.tensor([[0.0], [2.0], [3.0], [-1.0], [6.0]])
    triplets = BatchHardMiner(distance=EuclideanDistance())(x, torch.tensor([0, 0, 1, 1, 1]))
    assert as_set(triplets) == {(0, 1, 3), (1, 0, 2), (2, 3, 1), (3, 4, 0), (4, 3, 1)}


# Tuple conversions -----------------------------------------------------------------------
def test_tuple_conversions():
    a, p, n = torch.tensor([0, 0, 4]), torch.tensor([2, 5, 1]), torch.tensor([1, 3, 0])
    assert all(torch.equal(u, v) for u, v in zip(pairs_from_indices((a, p, n)), (a, p, a, n)))
    pairs = (torch.tensor([0, 4]), torch.tensor([2, 9]), torch.tensor([0, 0, 3]), torch.tensor([1, 3, 4]))
    # Anchor 0: 1 positive x 2 negatives; anchor 4 has no negative pair; anchor 3 no positive pair.
    assert as_set(triplets_from_indices(pairs)) == {(0, 2, 1), (0, 2, 3)}
    assert triplets_from_indices((a, p, n)) == (a, p, n)


# Agreement with pytorch-metric-learning -------------------------------------------------
def pml_distance(kind):
    from pytorch_metric_learning import distances

    if kind == "cosine":
        return distances.CosineSimilarity()
    return distances.LpDistance(normalize_embeddings=True, p=2, power=2)


OURS = {"squared_unit": SquaredEuclideanDistance(normalize_embeddings=True), "cosine": CosineSimilarity()}


@pytest.mark.parametrize("kind", list(OURS))
def test_batch_hard_agrees_with_pytorch_metric_learning(kind):
    pytest.importorskip("pytorch_metric_learning")
    from pytorch_metric_learning import miners

    x = random_batch(seed=2)
    ours = BatchHardMiner(distance=OURS[kind])(x, LABELS)
    theirs = miners.BatchHardMiner(distance=pml_distance(kind))(x, LABELS)
    assert as_set(ours) == as_set(theirs)


@pytest.mark.parametrize("kind", list(OURS))
def test_hardest_negative_agrees_with_pytorch_metric_learning(kind):
    # PML's BatchEasyHardMiner(pos "all", neg "hard") returns all positive pairs and each
    # anchor's hardest negative pair; combined by shared anchor, these are our triplets.
    pytest.importorskip("pytorch_metric_learning")
    from pytorch_metric_learning import miners

    x = random_batch(seed=2)
    ours = HardestNegativeMiner(distance=OURS[kind])(x, LABELS)
    pml = miners.BatchEasyHardMiner(pos_strategy="all", neg_strategy="hard", distance=pml_distance(kind))
    theirs = triplets_from_indices(pml(x, LABELS))
    assert as_set(ours) == as_set(theirs)


@pytest.mark.parametrize("kind", list(OURS))
def test_semihard_agrees_with_pytorch_metric_learning(kind):
    # PML's TripletMarginMiner(type "semihard") returns every semi-hard triplet; ours keeps,
    # for each of the same anchor-positive pairs, the one whose negative is closest.
    pytest.importorskip("pytorch_metric_learning")
    from pytorch_metric_learning import miners

    x = random_batch(seed=2)
    margin = 0.4 if kind == "squared_unit" else 0.2
    ours = as_set(SemiHardNegativeMiner(margin=margin, distance=OURS[kind])(x, LABELS))
    theirs = as_set(
        miners.TripletMarginMiner(margin=margin, type_of_triplets="semihard", distance=pml_distance(kind))(x, LABELS)
    )
    assert ours <= theirs
    assert {(a, p) for a, p, _ in ours} == {(a, p) for a, p, _ in theirs}
    matrix = brute_matrix(x, kind)
    sign = -1.0 if kind == "cosine" else 1.0
    for a, p, q in ours:
        assert sign * matrix[a, q] == min(sign * matrix[a, r] for aa, pp, r in theirs if (aa, pp) == (a, p))


def test_count_triplets_refuses_float_labels():
    from dmlnotes.miners import count_triplets

    assert count_triplets([0, 0, 1]) == 2
    with pytest.raises(ValueError, match="integer class ids"):
        count_triplets(torch.tensor([0.0, 0.0, 1.0]))


# The pair miner ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "labels",
    [torch.arange(6), torch.zeros(6, dtype=torch.long), torch.tensor([2]), torch.tensor([], dtype=torch.long)],
    ids=["distinct", "one_class", "one_sample", "no_sample"],
)
def test_multi_similarity_miner_on_batch_without_both_kinds_of_pair_returns_empty_long_tensors(labels):
    miner = MultiSimilarityMiner()
    pairs = miner(torch.randn(len(labels), 3), labels)
    assert len(pairs) == 4 and all(t.dtype == torch.long and t.numel() == 0 for t in pairs)
    assert miner.last_num_pairs == (0, 0)


def test_multi_similarity_miner_returns_valid_pairs_without_gradient():
    miner = MultiSimilarityMiner(epsilon=0.5)
    x = random_batch(dtype=torch.float32).requires_grad_(True)
    anchors_p, positives, anchors_n, negatives = miner(x, LABELS)
    assert anchors_p.numel() > 0 and anchors_n.numel() > 0 and x.grad is None
    assert (LABELS[anchors_p] == LABELS[positives]).all() and (anchors_p != positives).all()
    assert (LABELS[anchors_n] != LABELS[negatives]).all()
    assert miner.last_num_pairs == (anchors_p.numel(), anchors_n.numel())
    with pytest.raises(ValueError, match="embeddings"):
        miner(torch.randn(11), LABELS)
