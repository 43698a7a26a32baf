"""Tests of dmlnotes.losses.multi_similarity and dmlnotes.miners.multi_similarity against
brute-force loops over anchors and pairs, hand-computed cases, and pytorch-metric-learning's
MultiSimilarityLoss and MultiSimilarityMiner."""

import math

import pytest
import torch

from dmlnotes.distances import EuclideanDistance
from dmlnotes.losses import MultiSimilarityLoss
from dmlnotes.miners import AllTripletsMiner, MultiSimilarityMiner
from loss_testing import DTYPE_AND_TOL, assert_same_value_and_grad, check_empty_batch, random_embeddings

LABELS = torch.tensor([0, 1, 0, 2, 1, 0, 2, 3, 3, 1, 4])  # class 4 has no positive


def cosine(x, i, j):
    return (x[i] * x[j]).sum() / torch.sqrt((x[i] * x[i]).sum() * (x[j] * x[j]).sum())


def all_pairs(labels):
    n = len(labels)
    positives = [(i, j) for i in range(n) for j in range(n) if i != j and labels[i] == labels[j]]
    negatives = [(i, j) for i in range(n) for j in range(n) if labels[i] != labels[j]]
    return positives, negatives


def brute_multi_similarity(x, labels, alpha=2.0, beta=50.0, base=0.5, pairs=None):
    """Wang et al.'s per-anchor loss written out pair by pair, averaged over the batch."""
    positives, negatives = all_pairs(labels) if pairs is None else pairs
    total = 0.0
    for anchor in range(len(labels)):
        positive_sum = sum(torch.exp(-alpha * (cosine(x, anchor, p) - base)) for a, p in positives if a == anchor)
        negative_sum = sum(torch.exp(beta * (cosine(x, anchor, n) - base)) for a, n in negatives if a == anchor)
        total = total + torch.log(1 + torch.as_tensor(positive_sum, dtype=x.dtype)) / alpha
        total = total + torch.log(1 + torch.as_tensor(negative_sum, dtype=x.dtype)) / beta
    return total / len(labels)


def brute_miner(x, labels, epsilon=0.1):
    positives, negatives = all_pairs(labels)
    kept_positives, kept_negatives = [], []
    for anchor in range(len(labels)):
        s_pos = [float(cosine(x, anchor, p)) for a, p in positives if a == anchor]
        s_neg = [float(cosine(x, anchor, n)) for a, n in negatives if a == anchor]
        if not s_pos or not s_neg:
            continue
        kept_positives += [(a, p) for a, p in positives if a == anchor and cosine(x, a, p) - epsilon < max(s_neg)]
        kept_negatives += [(a, n) for a, n in negatives if a == anchor and cosine(x, a, n) + epsilon > min(s_pos)]
    return kept_positives, kept_negatives


def as_pairs(indices):
    a1, p, a2, n = (t.tolist() for t in indices)
    return list(zip(a1, p)), list(zip(a2, n))


@pytest.mark.parametrize("dtype, tol", DTYPE_AND_TOL)
@pytest.mark.parametrize("settings", [{}, dict(alpha=1.0, beta=10.0, base=0.2)])
def test_matches_the_brute_force_loop_in_value_and_gradient(dtype, tol, settings):
    x = random_embeddings(len(LABELS), 4, dtype, seed=1)
    assert_same_value_and_grad(
        lambda e: MultiSimilarityLoss(**settings)(e, LABELS),
        lambda e: brute_multi_similarity(e, LABELS, **settings),
        x,
        tol=dict(rtol=tol, atol=tol),
        grad_tol=dict(rtol=10 * tol, atol=10 * tol),
    )


@pytest.mark.parametrize("dtype, tol", DTYPE_AND_TOL)
def test_with_the_miners_pairs_matches_the_loop_over_those_pairs(dtype, tol):
    x = random_embeddings(len(LABELS), 4, dtype, seed=2)
    mined = MultiSimilarityMiner()(x, LABELS)
    assert mined[0].numel() > 0 and mined[2].numel() > 0
    assert_same_value_and_grad(
        lambda e: MultiSimilarityLoss()(e, LABELS, mined),
        lambda e: brute_multi_similarity(e, LABELS, pairs=as_pairs(mined)),
        x,
        tol=dict(rtol=tol, atol=tol),
        grad_tol=dict(rtol=10 * tol, atol=10 * tol),
    )


def test_triplets_count_as_their_pairs_once_each():
    x = random_embeddings(len(LABELS), 4, torch.float64, seed=3)
    triplets = AllTripletsMiner()(x, LABELS)
    # every positive and negative pair of an anchor with both appears in some triplet
    anchors_with_both = [i for i in range(len(LABELS)) if (LABELS[i] == LABELS).sum() > 1]
    positives, negatives = all_pairs(LABELS)
    pairs = (
        [(a, p) for a, p in positives if a in anchors_with_both],
        [(a, n) for a, n in negatives if a in anchors_with_both],
    )
    torch.testing.assert_close(
        MultiSimilarityLoss()(x, LABELS, triplets), brute_multi_similarity(x, LABELS, pairs=pairs)
    )


def test_a_hand_computed_case():
    x = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1])
    # anchors 0, 1: one positive at s = 1, one negative at s = 0; anchor 2: two negatives at s = 0
    pair_anchor = 0.5 * math.log(1 + math.exp(-1.0)) + math.log(1 + math.exp(-25.0)) / 50
    lonely_anchor = math.log(1 + 2 * math.exp(-25.0)) / 50
    expected = (2 * pair_anchor + lonely_anchor) / 3
    assert MultiSimilarityLoss()(x, labels).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_large_scales_stay_finite_at_the_worst_similarities(dtype):
    # negatives identical to the anchor (s = 1), positives opposite (s = -1)
    x = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]]).repeat(4, 1) * 300
    labels = torch.tensor([0, 0, 1, 1]).repeat(4)
    expected, expected_grad = _value_and_grad(MultiSimilarityLoss(alpha=8.0, beta=200.0), x.double(), labels)
    value, grad = _value_and_grad(MultiSimilarityLoss(alpha=8.0, beta=200.0), x.to(dtype), labels)
    assert torch.isfinite(value) and torch.isfinite(grad).all()
    assert float(value) == pytest.approx(float(expected), rel=1e-2)


def _value_and_grad(loss_fn, x, labels):
    x = x.clone().requires_grad_()
    value = loss_fn(x, labels)
    value.backward()
    return value.detach(), x.grad


def test_matches_pytorch_metric_learning_with_and_without_the_miner():
    pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
    pml_miners = pytest.importorskip("pytorch_metric_learning.miners")
    labels = torch.arange(8).repeat_interleave(4)
    x = random_embeddings(len(labels), 8, torch.float64, seed=4)
    # Same defaults (alpha = 2, beta = 50, base = 0.5), cosine similarity, mean over the batch.
    torch.testing.assert_close(MultiSimilarityLoss()(x, labels), pml_losses.MultiSimilarityLoss()(x, labels))
    ours, theirs = MultiSimilarityMiner()(x, labels), pml_miners.MultiSimilarityMiner()(x, labels)
    assert [sorted(p) for p in as_pairs(ours)] == [sorted(p) for p in as_pairs(theirs)]
    torch.testing.assert_close(
        MultiSimilarityLoss()(x, labels, ours), pml_losses.MultiSimilarityLoss()(x, labels, theirs)
    )


@pytest.mark.parametrize("epsilon", [0.0, 0.1, 0.5])
def test_the_miner_keeps_the_pairs_of_the_rule(epsilon):
    x = random_embeddings(len(LABELS), 4, torch.float64, seed=5)
    found = as_pairs(MultiSimilarityMiner(epsilon=epsilon)(x, LABELS))
    expected = brute_miner(x, LABELS, epsilon)
    assert found[0] == expected[0] and found[1] == expected[1]
    assert len(expected[0]) + len(expected[1]) > 0


@pytest.mark.parametrize("seed", range(5))
def test_an_anchor_keeps_positives_exactly_when_it_keeps_negatives(seed):
    x = random_embeddings(len(LABELS), 3, torch.float64, seed=seed)
    a1, _, a2, _ = MultiSimilarityMiner(epsilon=0.05)(x, LABELS)
    assert set(a1.tolist()) == set(a2.tolist())


def test_the_miner_of_a_batch_without_positives_keeps_nothing():
    miner = MultiSimilarityMiner()
    found = miner(random_embeddings(4, 3, torch.float32), torch.arange(4))
    assert all(t.numel() == 0 and t.dtype == torch.long for t in found) and miner.last_num_pairs == (0, 0)


def test_empty_tuple_gives_an_attached_zero_and_warns():
    x = random_embeddings(6, 3, torch.float64).requires_grad_()
    empty = torch.empty(0, dtype=torch.long)
    check_empty_batch(
        MultiSimilarityLoss(warn_if_empty=True), MultiSimilarityLoss(), x, torch.arange(6) % 2, (empty,) * 4
    )


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="alpha"):
        MultiSimilarityLoss(alpha=0.0)
    with pytest.raises(ValueError, match="beta"):
        MultiSimilarityLoss(beta=-1.0)
    with pytest.raises(ValueError, match="base"):
        MultiSimilarityLoss(base=float("nan"))
    with pytest.raises(ValueError, match="similarity"):
        MultiSimilarityLoss(distance=EuclideanDistance())
    with pytest.raises(ValueError, match="epsilon"):
        MultiSimilarityMiner(epsilon=-0.1)
