"""Tests of dmlnotes.losses.circle against a brute-force loop over anchors and pairs,
hand-computed cases, the float16 range at gamma = 256, and pytorch-metric-learning's CircleLoss."""

import math

import pytest
import torch

from dmlnotes.distances import EuclideanDistance
from dmlnotes.losses import CircleLoss
from dmlnotes.miners import MultiSimilarityMiner
from loss_testing import DTYPE_AND_TOL, assert_same_value_and_grad, check_empty_batch, random_embeddings

LABELS = torch.tensor([0, 1, 0, 2, 1, 0, 2, 3, 3, 1, 4])  # class 4 has no positive: not an anchor


def cosine(x, i, j):
    return (x[i] * x[j]).sum() / torch.sqrt((x[i] * x[i]).sum() * (x[j] * x[j]).sum())


def brute_circle(x, labels, margin=0.25, gamma=256.0, pairs=None):
    """Sun et al.'s eq. (4) per anchor, pair by pair, in log space (log-sum-exp of the listed logits,
    then log(1 + exp(.)) as logaddexp(0, .)), averaged over the anchors with both kinds of pair."""
    n = len(labels)
    if pairs is None:
        positives = [(i, j) for i in range(n) for j in range(n) if i != j and labels[i] == labels[j]]
        negatives = [(i, j) for i in range(n) for j in range(n) if labels[i] != labels[j]]
    else:
        positives, negatives = pairs
    terms = []
    for anchor in range(n):
        s_pos = [cosine(x, a, p) for a, p in positives if a == anchor]
        s_neg = [cosine(x, a, k) for a, k in negatives if a == anchor]
        if not s_pos or not s_neg:
            continue
        positive_logits = [-gamma * torch.clamp(1 + margin - s.detach(), min=0) * (s - (1 - margin)) for s in s_pos]
        negative_logits = [gamma * torch.clamp(s.detach() + margin, min=0) * (s - margin) for s in s_neg]
        summed = torch.logsumexp(torch.stack(positive_logits), 0) + torch.logsumexp(torch.stack(negative_logits), 0)
        terms.append(torch.logaddexp(torch.zeros_like(summed), summed))
    return sum(terms) / len(terms)


@pytest.mark.parametrize("dtype, tol", DTYPE_AND_TOL)
@pytest.mark.parametrize("settings", [dict(margin=0.4, gamma=10.0), dict(margin=0.25, gamma=30.0)])
def test_matches_the_brute_force_loop_in_value_and_gradient(dtype, tol, settings):
    x = random_embeddings(len(LABELS), 4, dtype, seed=1)
    assert_same_value_and_grad(
        lambda e: CircleLoss(**settings)(e, LABELS),
        lambda e: brute_circle(e, LABELS, **settings),
        x,
        tol=dict(rtol=tol, atol=tol),
        grad_tol=dict(rtol=10 * tol, atol=10 * tol),
    )


def test_matches_the_loop_at_the_papers_gamma_in_float64():
    x = random_embeddings(len(LABELS), 4, torch.float64, seed=2)
    assert_same_value_and_grad(
        lambda e: CircleLoss()(e, LABELS), lambda e: brute_circle(e, LABELS), x, tol=dict(rtol=1e-10, atol=1e-10)
    )


def test_with_the_miners_pairs_matches_the_loop_over_those_pairs():
    x = random_embeddings(len(LABELS), 4, torch.float64, seed=3)
    mined = MultiSimilarityMiner(epsilon=0.3)(x, LABELS)
    a1, p, a2, n = (t.tolist() for t in mined)
    pairs = list(zip(a1, p)), list(zip(a2, n))
    assert_same_value_and_grad(
        lambda e: CircleLoss(gamma=20.0)(e, LABELS, mined),
        lambda e: brute_circle(e, LABELS, gamma=20.0, pairs=pairs),
        x,
        tol=dict(rtol=1e-10, atol=1e-10),
    )


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_a_hand_case_far_outside_float16s_exponent_range(dtype):
    # cosines: 0 and 1 along the axes. Anchor 0: positive 2 at s = 0, negative 1 at s = 0;
    # anchor 2: positive 0 at s = 0, negative 1 at s = 1; anchor 1 has no positive.
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.0, 1.0]], dtype=dtype)
    labels = torch.tensor([0, 1, 0])
    # anchor 0: 256 * 1.25 * 0.75 + 256 * 0.25 * (0 - 0.25) = 240 - 16; anchor 2: 240 + 256 * 1.25 * 0.75 = 480
    expected = (224.0 + 480.0) / 2  # softplus(t) = t up to exp(-224)
    x.requires_grad_()
    loss = CircleLoss()(x, labels)
    loss.backward()
    assert loss.dtype == dtype and loss.item() == pytest.approx(expected, rel=1e-6)
    assert torch.isfinite(x.grad).all()


def test_a_hand_case_with_small_logits():
    x = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1])  # anchors 0 and 1: s_p = 1, s_n = 0; anchor 2 has no positive
    # a_p = a_n = m: both logits are gamma m (-m)
    margin, gamma = 0.4, 10.0
    expected = math.log1p(math.exp(-2 * gamma * margin * margin))
    assert CircleLoss(margin=margin, gamma=gamma)(x, labels).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("margin, gamma", [(0.4, 80.0), (0.25, 256.0)])
def test_matches_pytorch_metric_learning(margin, gamma):
    pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
    labels = torch.arange(8).repeat_interleave(4)
    x = random_embeddings(len(labels), 8, torch.float64, seed=4)
    theirs = pml_losses.CircleLoss(m=margin, gamma=gamma)
    torch.testing.assert_close(CircleLoss(margin=margin, gamma=gamma)(x, labels), theirs(x, labels))
    mined = MultiSimilarityMiner()(x, labels)
    torch.testing.assert_close(CircleLoss(margin=margin, gamma=gamma)(x, labels, mined), theirs(x, labels, mined))


def test_a_batch_without_an_anchor_with_both_pairs_gives_an_attached_zero():
    x = random_embeddings(4, 3, torch.float64).requires_grad_()
    check_empty_batch(CircleLoss(warn_if_empty=True), CircleLoss(), x, torch.arange(4))


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="margin"):
        CircleLoss(margin=-0.1)
    with pytest.raises(ValueError, match="gamma"):
        CircleLoss(gamma=0.0)
    with pytest.raises(ValueError, match="similarity"):
        CircleLoss(distance=EuclideanDistance())
