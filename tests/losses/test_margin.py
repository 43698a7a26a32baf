"""Tests of dmlnotes.losses.margin (Wu et al. 2017)."""

import pytest
import torch

from dmlnotes.losses import MarginLoss
from dmlnotes.miners import AllTripletsMiner, DistanceWeightedMiner
from loss_testing import DTYPES, check_empty_batch, random_embeddings
from loss_testing import PAIRWISE_TOLERANCES as TOL


def brute_margin(embeddings, labels, beta, margin, nu, pairs=None, per_class=False, reduction="mean_nonzero"):
    """Pair by pair: [alpha + y (D - beta)]_+ with D = ||x_i/|x_i| - x_j/|x_j|||; beta a tensor."""
    n = embeddings.shape[0]
    if pairs is None:
        pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
    terms, anchor_betas = [], []
    for i, j in pairs:
        x_i, x_j = embeddings[i] / embeddings[i].norm(), embeddings[j] / embeddings[j].norm()
        distance = ((x_i - x_j) ** 2).sum().sqrt()
        b = beta[int(labels[i])] if per_class else beta[0]
        y = 1.0 if labels[i] == labels[j] else -1.0
        terms.append(torch.clamp(margin + y * (distance - b), min=0))
        anchor_betas.append(b)
    total = sum(terms)
    count = sum(1 for t in terms if t.item() > 0) if reduction == "mean_nonzero" else len(terms)
    return total / count + nu * sum(anchor_betas) / len(anchor_betas)


def problem(dtype, seed=0):
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 3, 3])
    return random_embeddings(10, 4, dtype, seed=seed), labels


def value_and_grads(loss_fn, embeddings, labels, *rest):
    embeddings = embeddings.detach().clone().requires_grad_()
    loss = loss_fn(embeddings, labels, *rest)
    loss.backward()
    return loss.detach(), embeddings.grad, loss_fn.beta.grad


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("per_class", [False, True])
@pytest.mark.parametrize(
    "nu, beta, reduction", [(0.0, 1.2, "mean_nonzero"), (0.1, 1.0, "mean_nonzero"), (0.05, 1.3, "mean")]
)
@pytest.mark.parametrize("with_miner", [False, True])
def test_matches_brute_force_values_and_gradients_including_beta(dtype, per_class, nu, beta, reduction, with_miner):
    embeddings, labels = problem(dtype)
    loss_fn = MarginLoss(beta=beta, nu=nu, num_classes=4 if per_class else None, reduction=reduction).to(dtype)
    if per_class:
        with torch.no_grad():
            loss_fn.beta.copy_(torch.tensor([1.0, 1.1, 1.25, 1.4], dtype=dtype))
    rest, pairs = (), None
    if with_miner:
        a, p, n = DistanceWeightedMiner(seed=1)(embeddings, labels)
        rest = ((a, p, n),)
        pairs = list(zip(a.tolist(), p.tolist())) + list(zip(a.tolist(), n.tolist()))
    value, grad, beta_grad = value_and_grads(loss_fn, embeddings, labels, *rest)

    reference_embeddings = embeddings.detach().clone().requires_grad_()
    reference_beta = loss_fn.beta.detach().clone().requires_grad_()
    expected = brute_margin(
        reference_embeddings, labels, reference_beta, 0.2, nu, pairs=pairs, per_class=per_class, reduction=reduction
    )
    expected.backward()
    torch.testing.assert_close(value, expected.detach(), **TOL[dtype])
    torch.testing.assert_close(grad, reference_embeddings.grad, **TOL[dtype])
    torch.testing.assert_close(beta_grad, reference_beta.grad, **TOL[dtype])


def test_by_hand():
    # Unit vectors x_0 = (1, 0), x_1 = (0, 1) (label 0), x_2 = (-1, 0) (label 1).
    # D_01 = sqrt 2 = 1.4142136, D_02 = 2, D_12 = sqrt 2. alpha = 0.2, beta = 1.2.
    # Positive (0,1), (1,0): [0.2 + 1.4142136 - 1.2]_+ = 0.4142136 each.
    # Negative (0,2), (2,0): [0.2 - (2 - 1.2)]_+ = 0. (1,2), (2,1): [0.2 - 0.2142136]_+ = 0.
    # mean_nonzero: 2 * 0.4142136 / 2 = 0.4142136; mean: 0.8284271 / 6 = 0.1380712.
    embeddings = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1])
    loss_fn = MarginLoss().double()
    torch.testing.assert_close(loss_fn(embeddings, labels), torch.tensor(2**0.5 - 1, dtype=torch.float64))
    assert loss_fn.last_stats.num_terms == 6 and loss_fn.last_stats.num_active == 2
    loss_fn.reduction = "mean"
    torch.testing.assert_close(loss_fn(embeddings, labels), torch.tensor(2 * (2**0.5 - 1) / 6, dtype=torch.float64))
    # d loss / d beta with mean_nonzero: each active positive term has slope -1: -2 / 2 = -1; nu = 0.5 adds 0.5.
    loss_fn = MarginLoss(nu=0.5).double()
    loss_fn(embeddings, labels).backward()
    torch.testing.assert_close(loss_fn.beta.grad, torch.tensor([-0.5], dtype=torch.float64))


def test_agrees_with_pytorch_metric_learning_on_the_same_triplets():
    from pytorch_metric_learning.losses import MarginLoss as PMLMarginLoss

    embeddings, labels = problem(torch.float64)
    triplets = AllTripletsMiner()(embeddings, labels)
    ours = MarginLoss().double()
    theirs = PMLMarginLoss(margin=0.2, beta=1.2, learn_beta=True)  # its default distance: L2 on unit vectors
    ours_value, ours_grad, ours_beta_grad = value_and_grads(ours, embeddings, labels, triplets)
    theirs_value, theirs_grad, theirs_beta_grad = value_and_grads(theirs.double(), embeddings, labels, triplets)
    torch.testing.assert_close(ours_value, theirs_value)
    torch.testing.assert_close(ours_grad, theirs_grad)
    torch.testing.assert_close(ours_beta_grad, theirs_beta_grad)


def test_beta_is_a_parameter_that_can_be_frozen_and_grouped():
    loss_fn = MarginLoss(num_classes=3)
    assert [name for name, _ in loss_fn.named_parameters()] == ["beta"]
    torch.testing.assert_close(loss_fn.beta.detach(), torch.full((3,), 1.2))
    assert not MarginLoss(learn_beta=False).beta.requires_grad
    assert loss_fn.parameter_group(0.01)["params"][0] is loss_fn.beta
    with pytest.raises(ValueError, match="0..2"):
        loss_fn(torch.randn(2, 4), torch.tensor([0, 3]))


def test_empty_batch_and_bad_parameters():
    embeddings = torch.randn(1, 2, dtype=torch.float64, requires_grad=True)
    check_empty_batch(MarginLoss(warn_if_empty=True), MarginLoss(), embeddings, torch.tensor([0]))
    for name, bad in (("margin", 0.0), ("nu", -1.0), ("beta", float("nan")), ("num_classes", 0)):
        with pytest.raises(ValueError, match=name):
            MarginLoss(**{name: bad})
