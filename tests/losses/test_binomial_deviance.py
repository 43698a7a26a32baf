"""Tests of dmlnotes.losses.binomial_deviance against brute-force loops (per anchor, and Yi et
al.'s batch-level weighting on a class-balanced batch), hand-computed cases and extreme inputs.
pytorch-metric-learning has no binomial deviance loss."""

import math

import pytest
import torch

from dmlnotes.distances import EuclideanDistance
from dmlnotes.losses import BinomialDevianceLoss
from dmlnotes.miners import MultiSimilarityMiner
from loss_testing import DTYPE_AND_TOL, assert_same_value_and_grad, check_empty_batch, random_embeddings

LABELS = torch.tensor([0, 1, 0, 2, 1, 0, 2, 3, 3, 1, 4])


def cosine(x, i, j):
    return (x[i] * x[j]).sum() / torch.sqrt((x[i] * x[i]).sum() * (x[j] * x[j]).sum())


def deviance(s, sign, alpha, beta, cost):
    """log(1 + exp(-alpha (s - beta) m)), m = 1 for a positive pair, -cost for a negative one."""
    m = 1.0 if sign > 0 else -cost
    return torch.log(1 + torch.exp(-alpha * (s - beta) * m))


def all_pairs(labels):
    n = len(labels)
    positives = [(i, j) for i in range(n) for j in range(n) if i != j and labels[i] == labels[j]]
    negatives = [(i, j) for i in range(n) for j in range(n) if labels[i] != labels[j]]
    return positives, negatives


def brute_per_anchor(x, labels, alpha=2.0, beta=0.5, cost=25.0, pairs=None):
    positives, negatives = all_pairs(labels) if pairs is None else pairs
    terms = []
    for anchor in range(len(labels)):
        pos = [deviance(cosine(x, a, p), 1, alpha, beta, cost) for a, p in positives if a == anchor]
        neg = [deviance(cosine(x, a, k), -1, alpha, beta, cost) for a, k in negatives if a == anchor]
        if pos or neg:
            terms.append((sum(pos) / len(pos) if pos else 0.0) + (sum(neg) / len(neg) if neg else 0.0))
    return sum(terms) / len(terms)


def brute_batch_level(x, labels, alpha=2.0, beta=0.5, cost=25.0):
    """Yi et al.'s weights: 1/n_pos on every positive pair, 1/n_neg on every negative pair."""
    positives, negatives = all_pairs(labels)
    pos = sum(deviance(cosine(x, a, p), 1, alpha, beta, cost) for a, p in positives) / len(positives)
    neg = sum(deviance(cosine(x, a, k), -1, alpha, beta, cost) for a, k in negatives) / len(negatives)
    return pos + neg


@pytest.mark.parametrize("dtype, tol", DTYPE_AND_TOL)
@pytest.mark.parametrize("settings", [{}, dict(alpha=1.0, beta=0.2, cost=3.0)])
def test_matches_the_brute_force_loop_in_value_and_gradient(dtype, tol, settings):
    x = random_embeddings(len(LABELS), 4, dtype, seed=1)
    assert_same_value_and_grad(
        lambda e: BinomialDevianceLoss(**settings)(e, LABELS),
        lambda e: brute_per_anchor(e, LABELS, **settings),
        x,
        tol=dict(rtol=tol, atol=tol),
        grad_tol=dict(rtol=10 * tol, atol=10 * tol),
    )


def test_equals_yi_et_als_batch_level_weighting_on_a_class_balanced_batch():
    labels = torch.arange(4).repeat_interleave(3)
    x = random_embeddings(len(labels), 4, torch.float64, seed=2)
    assert_same_value_and_grad(
        lambda e: BinomialDevianceLoss()(e, labels),
        lambda e: brute_batch_level(e, labels),
        x,
        tol=dict(rtol=1e-10, atol=1e-10),
    )


def test_with_the_miners_pairs_matches_the_loop_over_those_pairs():
    x = random_embeddings(len(LABELS), 4, torch.float64, seed=3)
    mined = MultiSimilarityMiner(epsilon=0.3)(x, LABELS)
    a1, p, a2, n = (t.tolist() for t in mined)
    assert_same_value_and_grad(
        lambda e: BinomialDevianceLoss()(e, LABELS, mined),
        lambda e: brute_per_anchor(e, LABELS, pairs=(list(zip(a1, p)), list(zip(a2, n)))),
        x,
        tol=dict(rtol=1e-10, atol=1e-10),
    )


def test_a_hand_computed_case():
    x = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1])
    # anchors 0, 1: positive at s = 1, negative at s = 0; anchor 2: two negatives at s = 0
    with_positive = math.log1p(math.exp(-1.0)) + math.log1p(math.exp(-25.0))
    expected = (2 * with_positive + math.log1p(math.exp(-25.0))) / 3
    assert BinomialDevianceLoss()(x, labels).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_a_huge_cost_stays_finite_and_linear(dtype):
    # every anchor: its positive opposite (s = -1, deviance softplus(alpha (1 + beta)) = softplus(3)),
    # one negative identical (s = 1, softplus(alpha C (1 - beta)) = 1000), one opposite (about 0)
    x = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]], dtype=dtype).requires_grad_()
    labels = torch.tensor([0, 0, 1, 1])
    loss = BinomialDevianceLoss(cost=1000.0)(x, labels)
    loss.backward()
    assert loss.item() == pytest.approx(math.log1p(math.exp(3.0)) + 1000.0 / 2, rel=1e-2)  # bfloat16 keeps 8 bits
    assert torch.isfinite(x.grad).all()


def test_an_empty_tuple_gives_an_attached_zero():
    x = random_embeddings(6, 3, torch.float64).requires_grad_()
    empty = torch.empty(0, dtype=torch.long)
    check_empty_batch(
        BinomialDevianceLoss(warn_if_empty=True), BinomialDevianceLoss(), x, torch.arange(6) % 2, (empty,) * 4
    )


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="alpha"):
        BinomialDevianceLoss(alpha=0.0)
    with pytest.raises(ValueError, match="cost"):
        BinomialDevianceLoss(cost=-1.0)
    with pytest.raises(ValueError, match="similarity"):
        BinomialDevianceLoss(distance=EuclideanDistance())
