"""Tests of dmlnotes.losses.coupled_clusters against loops and hand-placed 2-D configurations."""

import pytest
import torch
import torch.nn.functional as F

from dmlnotes.distances import CosineSimilarity, SquaredEuclideanDistance
from dmlnotes.losses import CoupledClustersLoss
from loss_testing import (
    PAIRWISE_TOLERANCES,
    assert_same_value_and_grad,
    check_empty_batch,
    separated_clusters,
)


def brute_force_coupled_clusters(embeddings, labels, margin, detach_center=False, normalize=False):
    """Loop over classes: centre = mean of members, nearest negative to it, sum of 1/2 hinges; mean over classes."""
    if normalize:
        embeddings = F.normalize(embeddings, dim=1)
    labels = labels.tolist()
    n = len(labels)
    class_losses, num_members, num_violations = [], 0, 0
    for label in sorted(set(labels)):
        members = [i for i in range(n) if labels[i] == label]
        negatives = [k for k in range(n) if labels[k] != label]
        if len(members) < 2 or not negatives:
            continue
        centre = torch.stack([embeddings[i] for i in members]).mean(dim=0)
        if detach_center:
            centre = centre.detach()
        nearest = min(((embeddings[k] - centre) ** 2).sum() for k in negatives)
        class_loss = 0
        for i in members:
            hinge = 0.5 * torch.clamp(((embeddings[i] - centre) ** 2).sum() + margin - nearest, min=0.0)
            class_loss = class_loss + hinge
            num_violations += int(hinge > 0)
        num_members += len(members)
        class_losses.append(class_loss)
    return sum(class_losses) / len(class_losses), num_members, num_violations


def random_batch(dtype, seed=0, n_dim=3):
    generator = torch.Generator().manual_seed(seed)
    labels = torch.tensor([1, 0, 1, 2, 0, 0, 3, 1, 2, 4, 2, 2])  # classes of 3, 3, 4, 1, 1 samples
    centres = 1.5 * torch.randn(5, n_dim, generator=generator, dtype=torch.float64)
    embeddings = centres[labels] + torch.randn(labels.shape[0], n_dim, generator=generator, dtype=torch.float64)
    return embeddings.to(dtype), labels


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("detach_center", [False, True])
@pytest.mark.parametrize("normalize", [False, True])
def test_matches_brute_force_values_and_gradients(dtype, detach_center, normalize):
    embeddings, labels = random_batch(dtype, seed=1)
    margin = 2.0 if not normalize else 0.5
    loss_fn = CoupledClustersLoss(
        margin=margin, detach_center=detach_center, distance=SquaredEuclideanDistance(normalize_embeddings=normalize)
    )
    value, _ = assert_same_value_and_grad(
        lambda x: loss_fn(x, labels),
        lambda x: brute_force_coupled_clusters(x, labels, margin, detach_center, normalize)[0],
        embeddings,
        tol=PAIRWISE_TOLERANCES[dtype],
    )
    assert value > 0


def test_last_stats_count_members_and_violations():
    embeddings, labels = random_batch(torch.float64, seed=2)
    loss_fn = CoupledClustersLoss(margin=1.0)
    loss_fn(embeddings, labels)
    _, num_members, num_violations = brute_force_coupled_clusters(embeddings, labels, 1.0)
    assert num_members == 10  # the two single-sample classes are negatives only
    assert 0 < num_violations < num_members
    assert (loss_fn.last_stats.num_terms, loss_fn.last_stats.num_active) == (num_members, num_violations)


def test_survey_figure_1_triplet_misses_what_coupled_clusters_sees():
    # Class 0: a = (-1, 0), p = (1, 0); class 1: one negative n = (1.2, 0.6); alpha = 1.
    # Triplet (a, p, n), squared distances: d_ap^2 = 4, d_an^2 = 2.2^2 + 0.6^2 = 5.2
    #   -> [4 + 1 - 5.2]_+ = 0: with a as anchor the triplet is satisfied,
    #   although n is much closer to p than a is (d_pn^2 = 0.2^2 + 0.6^2 = 0.4).
    # Coupled clusters: c_p = (0, 0); ||a - c||^2 = ||p - c||^2 = 1; ||n - c||^2 = 1.44 + 0.36 = 1.8
    #   -> each member 1/2 [1 + 1 - 1.8]_+ = 0.1, class sum = 0.2; one positive set -> L = 0.2.
    embeddings = torch.tensor([[-1.0, 0.0], [1.0, 0.0], [1.2, 0.6]], dtype=torch.float64)
    a, p, n = embeddings
    labels = torch.tensor([0, 0, 1])
    squared = lambda u, v: float(((u - v) ** 2).sum())  # noqa: E731
    triplet_anchor_a = max(squared(a, p) + 1.0 - squared(a, n), 0.0)
    triplet_anchor_p = max(squared(p, a) + 1.0 - squared(p, n), 0.0)
    assert triplet_anchor_a == 0.0
    assert triplet_anchor_p == pytest.approx(4.6)
    loss_fn = CoupledClustersLoss(margin=1.0)
    assert loss_fn(embeddings, labels).item() == pytest.approx(0.2, abs=1e-12)
    assert (loss_fn.last_stats.num_terms, loss_fn.last_stats.num_active) == (2, 2)


@pytest.mark.parametrize(
    "detach_center, expected",
    [
        # Centre constant: d/df_i of 1/2 ||f_i - c||^2 = f_i - c -> a: (-1, 0), p: (1, 0);
        # the negative gets -(n - c) from each of the two active members -> (-2.4, -1.2).
        (True, [[-1.0, 0.0], [1.0, 0.0], [-2.4, -1.2]]),
        # Centre differentiable: dL/dc = -sum_i (f_i - c) + 2 (n - c) = (2.4, 1.2), and each member
        # gets 1/2 of it: a: (-1, 0) + (1.2, 0.6) = (0.2, 0.6), p: (1, 0) + (1.2, 0.6) = (2.2, 0.6).
        (False, [[0.2, 0.6], [2.2, 0.6], [-2.4, -1.2]]),
    ],
)
def test_survey_figure_1_gradients_by_hand(detach_center, expected):
    embeddings = torch.tensor([[-1.0, 0.0], [1.0, 0.0], [1.2, 0.6]], dtype=torch.float64, requires_grad=True)
    loss = CoupledClustersLoss(margin=1.0, detach_center=detach_center)(embeddings, torch.tensor([0, 0, 1]))
    loss.backward()
    torch.testing.assert_close(embeddings.grad, torch.tensor(expected, dtype=torch.float64))


def test_hand_computed_two_clusters_in_1d():
    # Class 0 at x = 0, 2 (centre 1); class 1 at x = 4, 6 (centre 5); alpha = 10.
    # Class 0: members at squared distance 1 from the centre; nearest negative 4 -> 9.
    #   each 1/2 [1 + 10 - 9] = 1, class sum 2.   Class 1: same by symmetry (nearest negative 2 -> 9).
    # Mean over the two positive sets: L = 2.
    embeddings = torch.tensor([[0.0], [2.0], [4.0], [6.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1])
    assert CoupledClustersLoss(margin=10.0)(embeddings, labels).item() == pytest.approx(2.0, abs=1e-12)
    # With alpha = 1 every hinge is 1/2 [1 + 1 - 9]_+ = 0.
    assert CoupledClustersLoss(margin=1.0)(embeddings, labels).item() == 0.0


def test_batch_permutation_invariance():
    embeddings, labels = random_batch(torch.float64, seed=3)
    loss_fn = CoupledClustersLoss(margin=1.5)
    permutation = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(loss_fn(embeddings, labels), loss_fn(embeddings[permutation], labels[permutation]))


def test_zero_loss_when_classes_are_separated_by_more_than_the_margin():
    # Members within 0.1 of their centre (squared 0.01); negatives >= 9 away (squared 81) > 0.01 + alpha.
    embeddings, labels = separated_clusters()
    loss_fn = CoupledClustersLoss(margin=1.0)
    assert loss_fn(embeddings, labels).item() == 0.0
    assert loss_fn.last_stats.num_active == 0
    # A margin larger than the gap makes every member violate.
    loss_fn = CoupledClustersLoss(margin=200.0)
    assert loss_fn(embeddings, labels).item() > 0
    assert loss_fn.last_stats.num_active == len(labels)


@pytest.mark.parametrize("labels", [[0, 1, 2, 3], [5, 5, 5]], ids=["all-distinct", "single-class"])
def test_empty_batch_returns_attached_zero_and_warns(labels):
    labels = torch.tensor(labels)
    embeddings = torch.randn(len(labels), 2, requires_grad=True)
    check_empty_batch(CoupledClustersLoss(warn_if_empty=True), CoupledClustersLoss(), embeddings, labels)


def test_large_scales_stay_finite_in_float32():
    embeddings, labels = random_batch(torch.float32, seed=5)
    embeddings = (embeddings * 1e3).requires_grad_(True)
    loss = CoupledClustersLoss(margin=1.0)(embeddings, labels)
    (grad,) = torch.autograd.grad(loss, embeddings)
    assert torch.isfinite(loss) and torch.isfinite(grad).all()


@pytest.mark.parametrize(
    "kwargs", [dict(margin=-1.0), dict(margin=float("nan")), dict(margin=float("inf")), dict(margin=True)]
)
def test_bad_parameters_raise(kwargs):
    with pytest.raises(ValueError, match="margin"):
        CoupledClustersLoss(**kwargs)


def test_bad_inputs_raise():
    loss_fn = CoupledClustersLoss()
    with pytest.raises(ValueError, match="shape"):
        loss_fn(torch.randn(4), torch.tensor([0, 0, 1, 1]))
    with pytest.raises(ValueError, match="batch size"):
        loss_fn(torch.randn(3, 2), torch.tensor([0, 0, 1, 1]))
    with pytest.raises(ValueError, match="floating"):
        loss_fn(torch.ones(4, 2, dtype=torch.long), torch.tensor([0, 0, 1, 1]))
    with pytest.raises(ValueError, match="indices_tuple"):
        triplet = (torch.tensor([0]), torch.tensor([1]), torch.tensor([2]))
        loss_fn(torch.randn(4, 2), torch.tensor([0, 0, 1, 1]), triplet)


def test_a_similarity_is_refused():
    with pytest.raises(ValueError, match="needs a distance"):
        CoupledClustersLoss(distance=CosineSimilarity())
