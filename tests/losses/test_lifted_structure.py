"""Tests of dmlnotes.losses.lifted_structure against loops, hand values and pytorch-metric-learning."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from dmlnotes.distances import EuclideanDistance
from dmlnotes.losses import LiftedStructureLoss
from loss_testing import (
    PAIRWISE_TOLERANCES,
    assert_same_value_and_grad,
    check_empty_batch,
    random_embeddings,
    separated_clusters,
)


def brute_force_lifted(embeddings, labels, margin, form, normalize=False, pairs=None, negative_pairs=None):
    """Loop over unordered positive pairs i < j; D is Euclidean; L = sum [J]_+^2 / (2 |P|).

    ``pairs`` / ``negative_pairs`` (sets of frozensets) restrict which pairs count.
    """
    if normalize:
        embeddings = F.normalize(embeddings, dim=1)
    labels = labels.tolist()
    n = len(labels)

    def distance(a, b):
        return torch.sqrt(((embeddings[a] - embeddings[b]) ** 2).sum())

    def negatives_of(a):
        return [
            k
            for k in range(n)
            if labels[k] != labels[a] and (negative_pairs is None or frozenset((a, k)) in negative_pairs)
        ]

    squared_hinges = []
    for i in range(n):
        for j in range(i + 1, n):
            if labels[i] != labels[j] or (pairs is not None and frozenset((i, j)) not in pairs):
                continue
            violations = [margin - distance(i, k) for k in negatives_of(i)]
            violations += [margin - distance(j, k) for k in negatives_of(j)]
            if not violations:
                continue
            if form == "smooth":
                hardest = torch.log(sum(torch.exp(v) for v in violations))
            else:
                hardest = torch.stack(violations).max()
            j_ij = hardest + distance(i, j)
            squared_hinges.append(torch.clamp(j_ij, min=0.0) ** 2)
    return sum(squared_hinges) / (2 * len(squared_hinges)), len(squared_hinges)


def random_batch(dtype, seed=0, n_dim=3):
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 4, 4])
    return random_embeddings(len(labels), n_dim, dtype, seed, draw_dtype=torch.float64), labels


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("form", ["smooth", "hard"])
@pytest.mark.parametrize("normalize", [False, True])
def test_matches_brute_force_values_and_gradients(dtype, form, normalize):
    embeddings, labels = random_batch(dtype, seed=1)
    margin = 1.5
    loss_fn = LiftedStructureLoss(margin=margin, form=form, distance=EuclideanDistance(normalize_embeddings=normalize))
    value, _ = assert_same_value_and_grad(
        lambda x: loss_fn(x, labels),
        lambda x: brute_force_lifted(x, labels, margin, form, normalize)[0],
        embeddings,
        tol=PAIRWISE_TOLERANCES[dtype],
    )
    assert value.dtype == dtype
    assert value > 0


def test_last_stats_count_unordered_positive_pairs_and_violations():
    embeddings, labels = random_batch(torch.float64, seed=1)
    embeddings = embeddings + 3.0 * F.one_hot(labels % 3, 3).double()  # some classes apart, some not
    loss_fn = LiftedStructureLoss(margin=0.5, form="hard")
    loss_fn(embeddings, labels)
    # Classes of sizes 3, 2, 4, 1, 2 -> 3 + 1 + 6 + 0 + 1 = 11 unordered positive pairs.
    assert loss_fn.last_stats.num_terms == 11
    distances = torch.cdist(embeddings, embeddings)
    active = 0
    for i, j in itertools.combinations(range(len(labels)), 2):
        if labels[i] == labels[j]:
            negatives = labels != labels[i]
            hardest = max((0.5 - distances[i, negatives]).max(), (0.5 - distances[j, negatives]).max())
            active += int(hardest + distances[i, j] > 0)
    assert 0 < active < 11  # the batch mixes satisfied and violated pairs
    assert loss_fn.last_stats.num_active == active


def test_hand_computed_three_points_in_1d():
    # Points x = 0 (class 0), 1 (class 0), 3 (class 1); margin alpha = 2.
    # One positive pair (0, 1) with D = 1; negatives: D(0, 3) = 3, D(1, 3) = 2.
    # hard:   J = max(2 - 3, 2 - 2) + 1 = 1              -> L = 1^2 / (2 * 1) = 0.5
    # smooth: J = log(e^-1 + e^0) + 1 = log(1.3678794) + 1 = 1.3132617
    #                                                   -> L = 1.3132617^2 / 2 = 0.8623281
    embeddings = torch.tensor([[0.0], [1.0], [3.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1])
    hard = LiftedStructureLoss(margin=2.0, form="hard")(embeddings, labels)
    smooth = LiftedStructureLoss(margin=2.0, form="smooth")(embeddings, labels)
    assert hard.item() == pytest.approx(0.5, abs=1e-12)
    assert smooth.item() == pytest.approx(0.8623281, abs=1e-6)
    assert smooth.item() == pytest.approx((math.log(math.exp(-1) + 1) + 1) ** 2 / 2, rel=1e-12)


def test_hand_computed_two_positive_pairs_average_over_pairs():
    # Points x = 0, 1 (class 0) and 3, 5 (class 1); margin alpha = 2, hard form.
    # Pair (0, 1): D = 1; alpha - D to negatives: 0 -> {-1, -3}, 1 -> {0, -2}; max 0 -> J = 1.
    # Pair (3, 5): D = 2; alpha - D to negatives: 3 -> {-1, 0}, 5 -> {-3, -2}; max 0 -> J = 2.
    # L = (1^2 + 2^2) / (2 * 2) = 1.25
    embeddings = torch.tensor([[0.0], [1.0], [3.0], [5.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1])
    loss_fn = LiftedStructureLoss(margin=2.0, form="hard")
    assert loss_fn(embeddings, labels).item() == pytest.approx(1.25, abs=1e-12)
    assert (loss_fn.last_stats.num_terms, loss_fn.last_stats.num_active) == (2, 2)


@pytest.mark.parametrize("form", ["smooth", "hard"])
def test_batch_permutation_invariance(form):
    embeddings, labels = random_batch(torch.float64, seed=3)
    loss_fn = LiftedStructureLoss(margin=1.0, form=form)
    permutation = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(loss_fn(embeddings, labels), loss_fn(embeddings[permutation], labels[permutation]))


def test_hard_form_is_zero_when_classes_are_separated_by_more_than_the_margin():
    # Three clusters of diameter <= 0.2 whose centres are 10 apart: every positive
    # distance plus alpha = 1 is below every negative distance, so each J_ij < 0.
    embeddings, labels = separated_clusters()
    loss_fn = LiftedStructureLoss(margin=1.0, form="hard")
    assert loss_fn(embeddings, labels).item() == 0.0
    assert loss_fn.last_stats.num_active == 0
    # The smooth bound adds at most log(number of negatives), far below the gap here.
    assert LiftedStructureLoss(margin=1.0, form="smooth")(embeddings, labels).item() == 0.0
    # Shrink the gap below the margin and the hard form sees it.
    squeezed = torch.cat([embeddings[:3], embeddings[3:] * 0.0 + embeddings[:1] + 0.5])
    assert LiftedStructureLoss(margin=1.0, form="hard")(squeezed, labels).item() > 0


@pytest.mark.parametrize("seed", range(5))
def test_smooth_form_upper_bounds_hard_form(seed):
    # log(sum exp v) >= max v, and [.]_+^2 is non-decreasing, so smooth >= hard pair by pair.
    embeddings, labels = random_batch(torch.float64, seed=seed)
    for margin in (0.0, 0.5, 2.0):
        smooth = LiftedStructureLoss(margin=margin, form="smooth")(embeddings, labels)
        hard = LiftedStructureLoss(margin=margin, form="hard")(embeddings, labels)
        assert smooth >= hard
        assert smooth > 0


@pytest.mark.parametrize("labels", [[0, 1, 2, 3], [5, 5, 5]], ids=["all-distinct", "single-class"])
@pytest.mark.parametrize("form", ["smooth", "hard"])
def test_empty_batch_returns_attached_zero_and_warns(labels, form):
    labels = torch.tensor(labels)
    embeddings = torch.randn(len(labels), 2, requires_grad=True)
    check_empty_batch(
        LiftedStructureLoss(form=form, warn_if_empty=True), LiftedStructureLoss(form=form), embeddings, labels
    )


def test_coincident_points_and_large_scales_stay_finite():
    # Coincident positives (D = 0) and far-apart float32 embeddings (D ~ 1e4).
    embeddings = torch.tensor([[0.0, 0.0], [0.0, 0.0], [3e3, 4e3], [3e3, 4e3 + 1.0]], requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1])
    for form in ("smooth", "hard"):
        loss = LiftedStructureLoss(margin=1.0, form=form)(embeddings, labels)
        (grad,) = torch.autograd.grad(loss, embeddings)
        assert torch.isfinite(loss) and torch.isfinite(grad).all()
    close = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.1, 0.0]], requires_grad=True)
    loss = LiftedStructureLoss(margin=1.0)(close, torch.tensor([0, 0, 1]))
    (grad,) = torch.autograd.grad(loss, close)
    assert loss > 0 and torch.isfinite(grad).all()


def test_indices_tuple_with_all_pairs_equals_no_tuple():
    embeddings, labels = random_batch(torch.float64, seed=5)
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    anchors_p, positives = torch.where(same & ~torch.eye(len(labels), dtype=torch.bool))
    anchors_n, negatives = torch.where(~same)
    loss_fn = LiftedStructureLoss(margin=1.0)
    torch.testing.assert_close(
        loss_fn(embeddings, labels, (anchors_p, positives, anchors_n, negatives)), loss_fn(embeddings, labels)
    )


@pytest.mark.parametrize("form", ["smooth", "hard"])
def test_indices_tuple_restricts_pairs_like_the_brute_force(form):
    embeddings, labels = random_batch(torch.float64, seed=6)
    anchors_p, positives = torch.tensor([0, 5, 8, 3]), torch.tensor([1, 6, 5, 4])  # (8, 5) repeats (5, 8)
    anchors_n, negatives = torch.tensor([0, 6, 9, 3, 4]), torch.tensor([3, 10, 5, 7, 1])
    pairs = {frozenset(p) for p in zip(anchors_p.tolist(), positives.tolist())}
    negative_pairs = {frozenset(p) for p in zip(anchors_n.tolist(), negatives.tolist())}
    loss_fn = LiftedStructureLoss(margin=2.0, form=form)
    assert_same_value_and_grad(
        lambda x: loss_fn(x, labels, (anchors_p, positives, anchors_n, negatives)),
        lambda x: brute_force_lifted(x, labels, 2.0, form, pairs=pairs, negative_pairs=negative_pairs)[0],
        embeddings,
    )
    # Every listed pair keeps a negative at one end at least: N(0)={3}, N(5)={9}, N(3)={0,7}.
    assert loss_fn.last_stats.num_terms == 4


@pytest.mark.parametrize(
    "kwargs",
    [dict(margin=-0.1), dict(margin=float("nan")), dict(margin=float("inf")), dict(margin="1"), dict(form="soft")],
)
def test_bad_parameters_raise(kwargs):
    with pytest.raises(ValueError):
        LiftedStructureLoss(**kwargs)


def test_bad_inputs_raise():
    loss_fn = LiftedStructureLoss()
    with pytest.raises(ValueError, match="shape"):
        loss_fn(torch.randn(4), torch.tensor([0, 0, 1, 1]))
    with pytest.raises(ValueError, match="batch size"):
        loss_fn(torch.randn(4, 2), torch.tensor([0, 0, 1]))
    with pytest.raises(ValueError, match="integer"):
        loss_fn(torch.randn(4, 2), torch.tensor([0.0, 0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="indices_tuple"):
        loss_fn(torch.randn(4, 2), torch.tensor([0, 0, 1, 1]), (torch.tensor([0]), torch.tensor([1])))
    with pytest.raises(ValueError, match="indices"):
        triplet = (torch.tensor([0]), torch.tensor([7]), torch.tensor([2]))
        loss_fn(torch.randn(4, 2), torch.tensor([0, 0, 1, 1]), triplet)


@pytest.mark.parametrize("normalize", [False, True])
def test_agrees_with_pytorch_metric_learning(normalize):
    pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
    from pytorch_metric_learning.distances import LpDistance

    embeddings, labels = random_batch(torch.float64, seed=7, n_dim=4)
    ours = LiftedStructureLoss(margin=1.3, form="smooth", distance=EuclideanDistance(normalize_embeddings=normalize))
    theirs = pml_losses.LiftedStructureLoss(
        neg_margin=1.3, pos_margin=0, distance=LpDistance(p=2, power=1, normalize_embeddings=normalize)
    )
    assert_same_value_and_grad(lambda x: ours(x, labels), lambda x: theirs(x, labels), embeddings)
