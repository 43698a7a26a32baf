"""Tests of dmlnotes.losses.angular (Wang et al. 2017)."""

import math

import pytest
import torch
import torch.nn.functional as F

from dmlnotes.losses import AngularLoss
from dmlnotes.miners import AllTripletsMiner, BatchHardMiner
from loss_testing import DTYPES, assert_same_value_and_grad, check_empty_batch, random_embeddings
from loss_testing import PAIRWISE_TOLERANCES as TOL


def brute_angular(embeddings, labels, alpha_degrees, form, normalize=True, pairs=None, triplets=None):
    """Triplet by triplet from the geometric definition (centre x_c, distances), or pair by
    pair with f_{a,p,n} written out; differentiable."""
    t = math.tan(math.radians(alpha_degrees)) ** 2
    x = [e / e.norm() if normalize else e for e in embeddings]
    n = len(x)
    terms = []
    if form == "triplet":
        if triplets is None:
            triplets = [
                (a, p, q)
                for a in range(n)
                for p in range(n)
                for q in range(n)
                if a != p and labels[a] == labels[p] and labels[q] != labels[a]
            ]
        for a, p, q in triplets:
            centre = (x[a] + x[p]) / 2
            terms.append(torch.clamp(((x[a] - x[p]) ** 2).sum() - 4 * t * ((x[q] - centre) ** 2).sum(), min=0))
    else:
        if pairs is None:
            pairs = [(a, p) for a in range(n) for p in range(n) if a != p and labels[a] == labels[p]]
        for a, p in pairs:
            total = 0.0
            for q in range(n):
                if labels[q] != labels[a]:
                    total = total + torch.exp(4 * t * (x[a] + x[p]) @ x[q] - 2 * (1 + t) * (x[a] @ x[p]))
            terms.append(torch.log(1 + total))
    return sum(terms) / len(terms)


def problem(dtype, n=10, dim=4, seed=0):
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 3, 3])[:n]
    return random_embeddings(n, dim, dtype, seed=seed), labels


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("form", ["smooth", "triplet"])
@pytest.mark.parametrize("alpha", [40.0, 36.0, 55.0])
@pytest.mark.parametrize("normalize", [True, False])
def test_matches_brute_force_values_and_gradients(dtype, form, alpha, normalize):
    embeddings, labels = problem(dtype)
    if not normalize:
        embeddings = 0.5 * embeddings
    loss_fn = AngularLoss(alpha=alpha, form=form, normalize_embeddings=normalize)
    tol = TOL[dtype]
    assert_same_value_and_grad(
        lambda e: loss_fn(e, labels),
        lambda e: brute_angular(e, labels, alpha, form, normalize),
        embeddings,
        tol,
    )


@pytest.mark.parametrize("form", ["smooth", "triplet"])
def test_with_a_miners_triplets(form):
    embeddings, labels = problem(torch.float64)
    anchors, positives, negatives = BatchHardMiner()(embeddings, labels)
    triplets = list(zip(anchors.tolist(), positives.tolist(), negatives.tolist()))
    loss_fn = AngularLoss(form=form)
    assert_same_value_and_grad(
        lambda e: loss_fn(e, labels, (anchors, positives, negatives)),
        lambda e: brute_angular(e, labels, 40.0, form, triplets=triplets, pairs=[t[:2] for t in triplets]),
        embeddings,
        TOL[torch.float64],
    )


def test_all_triplets_from_a_miner_give_the_default_triplet_loss():
    embeddings, labels = problem(torch.float64)
    loss_fn = AngularLoss(form="triplet")
    torch.testing.assert_close(
        loss_fn(embeddings, labels, AllTripletsMiner()(embeddings, labels)), loss_fn(embeddings, labels)
    )


def test_by_hand_right_angle_triangle():
    # a = (1, 0), p = (0, 1), n = (-1, 0), unit vectors, alpha = 45 degrees so tan^2 = 1.
    # ||a - p||^2 = 2; x_c = (0.5, 0.5), ||n - x_c||^2 = 1.5^2 + 0.5^2 = 2.5.
    # Triplet form: [2 - 4 * 2.5]_+ = 0 for (a, p, n) and, by symmetry, for (p, a, n).
    # f_{a,p,n} = 4 (a + p).n - 2 * 2 * a.p = 4 * (-1) - 0 = -4; same for (p, a):
    # smooth form log(1 + e^-4) = 0.0181499.
    embeddings = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1])
    assert AngularLoss(alpha=45.0, form="triplet")(embeddings, labels).item() == 0.0
    torch.testing.assert_close(
        AngularLoss(alpha=45.0)(embeddings, labels), torch.tensor(math.log1p(math.exp(-4.0)), dtype=torch.float64)
    )
    # Negative at x_c's direction, n = (1, 1) / sqrt 2: ||n - x_c||^2 = (1/sqrt2 - 1/2)^2 * 2 = 0.0857864;
    # triplet form 2 - 4 * 0.0857864 = 1.6568542 (the angle at n is wider than 2 alpha).
    embeddings[2] = torch.tensor([1.0, 1.0], dtype=torch.float64) / math.sqrt(2)
    expected = 2 - 4 * 2 * (1 / math.sqrt(2) - 0.5) ** 2
    torch.testing.assert_close(
        AngularLoss(alpha=45.0, form="triplet")(embeddings, labels), torch.tensor(expected, dtype=torch.float64)
    )


def test_smooth_form_is_a_soft_maximum_of_the_hinge_arguments_up_to_2_minus_6t():
    # For unit vectors f_{a,p,n} = ||a - p||^2 - 4 t ||n - x_c||^2 - (2 - 6 t).
    embeddings, labels = problem(torch.float64)
    x = F.normalize(embeddings, dim=1)
    t = math.tan(math.radians(40.0)) ** 2
    for a, p, q in [(0, 1, 3), (3, 4, 9), (5, 7, 0)]:
        centre = (x[a] + x[p]) / 2
        hinge_argument = ((x[a] - x[p]) ** 2).sum() - 4 * t * ((x[q] - centre) ** 2).sum()
        f = 4 * t * (x[a] + x[p]) @ x[q] - 2 * (1 + t) * (x[a] @ x[p])
        torch.testing.assert_close(f, hinge_argument - (2 - 6 * t))


def test_scale_invariance_with_normalisation():
    embeddings, labels = problem(torch.float64)
    loss_fn = AngularLoss()
    torch.testing.assert_close(loss_fn(7.0 * embeddings, labels), loss_fn(embeddings, labels))


def test_agrees_with_pytorch_metric_learning_on_unit_vectors():
    # PML normalises the anchors and positives but not the negatives. On unit vectors the
    # values agree; our gradient goes through the normalisation of every sample, so it is
    # PML's projected onto the tangent space of the sphere, (I - x x^T) g.
    from pytorch_metric_learning.losses import AngularLoss as PMLAngularLoss

    embeddings, labels = problem(torch.float64, n=10, dim=5)
    unit = F.normalize(embeddings, dim=1)
    pml = PMLAngularLoss(alpha=40)  # degrees, like ours
    ours = unit.clone().requires_grad_()
    theirs = unit.clone().requires_grad_()
    ours_value, theirs_value = AngularLoss()(ours, labels), pml(theirs, labels)
    torch.testing.assert_close(ours_value, theirs_value)
    ours_value.backward()
    theirs_value.backward()
    projected = theirs.grad - (theirs.grad * unit).sum(dim=1, keepdim=True) * unit
    torch.testing.assert_close(ours.grad, projected)
    # On non-unit input the values differ.
    assert not torch.allclose(AngularLoss()(3 * embeddings, labels), pml(3 * embeddings, labels))


def test_empty_batch_and_bad_parameters():
    embeddings = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    for form in ("smooth", "triplet"):
        check_empty_batch(
            AngularLoss(form=form, warn_if_empty=True), AngularLoss(form=form), embeddings, torch.tensor([0, 1, 2])
        )
        check_empty_batch(
            AngularLoss(form=form, warn_if_empty=True), AngularLoss(form=form), embeddings, torch.tensor([1, 1, 1])
        )
    for bad in (0.0, 90.0, -10.0, float("nan")):
        with pytest.raises(ValueError, match="alpha"):
            AngularLoss(alpha=bad)
    with pytest.raises(ValueError, match="form"):
        AngularLoss(form="hinge")
