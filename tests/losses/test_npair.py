"""Tests of dmlnotes.losses.npair against loops, hand values and pytorch-metric-learning."""

import math

import pytest
import torch
import torch.nn.functional as F

from dmlnotes.data.samplers import ClassBalancedBatchSampler
from dmlnotes.losses import NPairLoss
from dmlnotes.losses.npair import npair_batch_sampler, split_anchor_positive
from loss_testing import (
    PAIRWISE_TOLERANCES,
    assert_same_value_and_grad,
    check_empty_batch,
    random_embeddings,
)


def brute_force_all_pairs(embeddings, labels, l2_reg, l2_reg_form, normalize=False):
    """Eq. (4) literally: every ordered positive pair (i, j), negatives every k of another class."""
    if normalize:
        embeddings = F.normalize(embeddings, dim=1)
    labels = labels.tolist()
    n = len(labels)
    terms = []
    for i in range(n):
        negatives = [k for k in range(n) if labels[k] != labels[i]]
        for j in range(n):
            if j == i or labels[j] != labels[i] or not negatives:
                continue
            positive = torch.exp(embeddings[i] @ embeddings[j])
            denominator = positive + sum(torch.exp(embeddings[i] @ embeddings[k]) for k in negatives)
            terms.append(-torch.log(positive / denominator))
    norms = [torch.sqrt((row * row).sum()) for row in embeddings]
    if l2_reg_form == "squared":
        penalty = 0.5 * l2_reg * sum(norm**2 for norm in norms) / n
    else:
        penalty = l2_reg / n * sum(norms)  # the survey's lambda / m * sum ||f(X_i)||_2
    return sum(terms) / len(terms) + penalty


def brute_force_npair(embeddings, labels, l2_reg, normalize=False):
    """Sohn's multi-class N-pair loss on the first two samples of each class, reference-code penalty."""
    if normalize:
        embeddings = F.normalize(embeddings, dim=1)
    labels = labels.tolist()
    seen = {}
    for index, label in enumerate(labels):
        seen.setdefault(label, []).append(index)
    pairs = [members[:2] for members in seen.values() if len(members) >= 2]
    anchors = [embeddings[a] for a, _ in pairs]
    positives = [embeddings[p] for _, p in pairs]
    terms = []
    for c, anchor in enumerate(anchors):
        logits = [anchor @ positive for positive in positives]
        terms.append(-torch.log(torch.exp(logits[c]) / sum(torch.exp(logit) for logit in logits)))
    mean_sq = lambda rows: sum((row * row).sum() for row in rows) / len(rows)  # noqa: E731
    penalty = 0.25 * l2_reg * (mean_sq(anchors) + mean_sq(positives))
    return sum(terms) / len(terms) + penalty


def random_batch(dtype, seed=0, n_dim=3):
    labels = torch.tensor([2, 0, 1, 2, 0, 0, 3, 1, 4, 2, 4, 4, 5])  # classes of 3, 3, 2, 1, 3, 1 samples
    return random_embeddings(len(labels), n_dim, dtype, seed, draw_dtype=torch.float64), labels


def canonical_batch(num_classes, dtype=torch.float64, seed=0, n_dim=4):
    """Anchor then positive for each class: labels 0, 0, 1, 1, ..."""
    labels = torch.arange(num_classes).repeat_interleave(2)
    return random_embeddings(len(labels), n_dim, dtype, seed, draw_dtype=torch.float64), labels


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("l2_reg_form", ["squared", "norm"])
@pytest.mark.parametrize("normalize", [False, True])
def test_all_pairs_matches_brute_force(dtype, l2_reg_form, normalize):
    embeddings, labels = random_batch(dtype, seed=1)
    loss_fn = NPairLoss(l2_reg=0.05, pairs="all", l2_reg_form=l2_reg_form, normalize_embeddings=normalize)
    assert_same_value_and_grad(
        lambda x: loss_fn(x, labels),
        lambda x: brute_force_all_pairs(x, labels, 0.05, l2_reg_form, normalize),
        embeddings,
        tol=PAIRWISE_TOLERANCES[dtype],
    )
    # Ordered positive pairs: 3 classes of 3 -> 3 * 6, one class of 2 -> 2.
    assert loss_fn.last_stats.num_terms == 20


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("batch", ["general", "canonical"])
def test_npair_matches_brute_force(dtype, normalize, batch):
    embeddings, labels = random_batch(dtype, seed=2) if batch == "general" else canonical_batch(5, dtype)
    loss_fn = NPairLoss(l2_reg=0.05, pairs="npair", normalize_embeddings=normalize)
    assert_same_value_and_grad(
        lambda x: loss_fn(x, labels),
        lambda x: brute_force_npair(x, labels, 0.05, normalize),
        embeddings,
        tol=PAIRWISE_TOLERANCES[dtype],
    )
    assert loss_fn.last_stats.num_terms == (4 if batch == "general" else 5)


def test_hand_computed_canonical_batch():
    # a0 = (1, 0), p0 = (2, 0), a1 = (0, 1), p1 = (0, 1); labels 0, 0, 1, 1.
    # npair: logits of a0 over (p0, p1) = (2, 0) -> log(1 + e^-2) = 0.1269280
    #        logits of a1 over (p0, p1) = (0, 1) -> log(1 + e^-1) = 0.3132617
    #        mean = 0.2200948
    # all:   (a0, p0) and (p0, a0): S = 2, the two other-class samples give S = 0 -> log(1 + 2 e^-2) = 0.2395448
    #        (a1, p1) and (p1, a1): S = 1, other-class samples give S = 0        -> log(1 + 2 e^-1) = 0.5514447
    #        mean = 0.3954947
    # penalty, reference form: 0.25 * lambda * (mean(1, 1) + mean(4, 1)) = 0.25 * lambda * 3.5 = 0.875 * lambda
    # penalty, survey form: lambda / 4 * (1 + 2 + 1 + 1) = 1.25 * lambda
    embeddings = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 1.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1])
    npair = NPairLoss(l2_reg=0.0, pairs="npair")(embeddings, labels).item()
    assert npair == pytest.approx(0.2200948, abs=1e-7)
    assert npair == pytest.approx((math.log1p(math.exp(-2)) + math.log1p(math.exp(-1))) / 2, rel=1e-12)
    all_pairs = NPairLoss(l2_reg=0.0, pairs="all")(embeddings, labels).item()
    assert all_pairs == pytest.approx(0.3954947, abs=1e-7)
    assert all_pairs == pytest.approx((math.log1p(2 * math.exp(-2)) + math.log1p(2 * math.exp(-1))) / 2, rel=1e-12)
    with_penalty = NPairLoss(l2_reg=0.002, pairs="npair")(embeddings, labels).item()
    assert with_penalty == pytest.approx(0.2200948 + 0.00175, abs=1e-7)
    survey_penalty = NPairLoss(l2_reg=0.002, pairs="all", l2_reg_form="norm")(embeddings, labels).item()
    assert survey_penalty == pytest.approx(0.3954947 + 0.0025, abs=1e-7)


def test_default_is_reference_penalty_and_all_pairs():
    loss_fn = NPairLoss()
    assert (loss_fn.l2_reg, loss_fn.l2_reg_form, loss_fn.pairs, loss_fn.normalize_embeddings) == (
        0.002,
        "squared",
        "all",
        False,
    )


def test_npair_on_canonical_batch_is_cross_entropy_over_anchor_positive_similarities():
    embeddings, labels = canonical_batch(6, seed=3)
    anchors, positives = embeddings[0::2], embeddings[1::2]
    expected = F.cross_entropy(anchors @ positives.T, torch.arange(6))
    expected = expected + 0.25 * 0.01 * ((anchors**2).sum(1).mean() + (positives**2).sum(1).mean())
    torch.testing.assert_close(NPairLoss(l2_reg=0.01, pairs="npair")(embeddings, labels), expected)


def test_all_pairs_is_permutation_invariant():
    embeddings, labels = random_batch(torch.float64, seed=4)
    loss_fn = NPairLoss(pairs="all")
    permutation = torch.randperm(len(labels), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(loss_fn(embeddings, labels), loss_fn(embeddings[permutation], labels[permutation]))


def test_npair_is_invariant_to_reordering_the_pairs():
    # Anchor/positive roles follow the batch order within a class, so permute whole pairs.
    embeddings, labels = canonical_batch(5, seed=5)
    pair_order = torch.randperm(5, generator=torch.Generator().manual_seed(2))
    permutation = torch.stack([2 * pair_order, 2 * pair_order + 1], dim=1).flatten()
    loss_fn = NPairLoss(pairs="npair")
    torch.testing.assert_close(loss_fn(embeddings, labels), loss_fn(embeddings[permutation], labels[permutation]))
    # Swapping anchor and positive inside a class changes the loss (the N-pair loss is not symmetric).
    swapped = torch.tensor([1, 0, 2, 3, 4, 5, 6, 7, 8, 9])
    assert not torch.isclose(loss_fn(embeddings, labels), loss_fn(embeddings[swapped], labels[swapped]))


@pytest.mark.parametrize("labels", [[0, 1, 2, 3], [7, 7, 7, 7], [7, 7]], ids=["all-distinct", "one-class", "one-pair"])
@pytest.mark.parametrize("pairs", ["all", "npair"])
def test_empty_batch_returns_attached_zero_and_warns(labels, pairs):
    labels = torch.tensor(labels)
    embeddings = torch.randn(len(labels), 3, requires_grad=True)
    check_empty_batch(NPairLoss(pairs=pairs, warn_if_empty=True), NPairLoss(pairs=pairs), embeddings, labels)


def test_large_similarities_stay_finite_in_float32():
    embeddings, labels = canonical_batch(4, dtype=torch.float32, seed=6)
    embeddings = (embeddings * 100.0).requires_grad_(True)  # dot products ~ 1e4, exp would overflow
    for pairs in ("all", "npair"):
        loss = NPairLoss(pairs=pairs)(embeddings, labels)
        (grad,) = torch.autograd.grad(loss, embeddings)
        assert torch.isfinite(loss) and torch.isfinite(grad).all()


def test_survey_penalty_has_finite_gradient_at_a_zero_embedding():
    embeddings = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 2.0]], requires_grad=True)
    loss = NPairLoss(l2_reg=0.1, l2_reg_form="norm")(embeddings, torch.tensor([0, 0, 1, 1]))
    (grad,) = torch.autograd.grad(loss, embeddings)
    assert torch.isfinite(grad).all()


def test_split_anchor_positive_takes_first_two_of_each_class():
    labels = torch.tensor([3, 1, 3, 2, 1, 2, 1, 9])
    embeddings = torch.arange(8, dtype=torch.float64).unsqueeze(1)
    anchors, positives, classes = split_anchor_positive(embeddings, labels)
    assert anchors.squeeze(1).tolist() == [0.0, 1.0, 3.0]
    assert positives.squeeze(1).tolist() == [2.0, 4.0, 5.0]
    assert classes.tolist() == [3, 1, 2]
    with pytest.raises(ValueError):
        split_anchor_positive(embeddings, labels[:-1])


def test_npair_batch_sampler_yields_one_anchor_and_one_positive_per_class():
    labels = torch.arange(10).repeat_interleave(5)
    sampler = npair_batch_sampler(labels, num_classes_per_batch=4, num_batches=3, seed=0)
    assert isinstance(sampler, ClassBalancedBatchSampler)
    assert (sampler.classes_per_batch, sampler.samples_per_class, len(sampler)) == (4, 2, 3)
    for batch in sampler:
        batch_labels = labels[batch]
        assert len(batch) == 8 and len(set(batch)) == 8
        assert batch_labels[0::2].tolist() == batch_labels[1::2].tolist()  # listed pair by pair
        assert len(set(batch_labels.tolist())) == 4


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(l2_reg=-0.001),
        dict(l2_reg=float("nan")),
        dict(l2_reg=float("inf")),
        dict(l2_reg=None),
        dict(pairs="triplets"),
        dict(l2_reg_form="l1"),
    ],
)
def test_bad_parameters_raise(kwargs):
    with pytest.raises(ValueError):
        NPairLoss(**kwargs)


def test_bad_inputs_raise():
    loss_fn = NPairLoss()
    with pytest.raises(ValueError, match="shape"):
        loss_fn(torch.randn(2, 2, 2), torch.tensor([0, 0]))
    with pytest.raises(ValueError, match="batch size"):
        loss_fn(torch.randn(4, 2), torch.tensor([0, 0, 1]))
    with pytest.raises(ValueError, match="indices_tuple"):
        triplet = (torch.tensor([0]), torch.tensor([1]), torch.tensor([2]))
        loss_fn(torch.randn(4, 2), torch.tensor([0, 0, 1, 1]), triplet)


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("batch", ["general", "canonical"])
def test_agrees_with_pytorch_metric_learning(normalize, batch):
    pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
    from pytorch_metric_learning.distances import DotProductSimilarity

    embeddings, labels = random_batch(torch.float64, seed=7) if batch == "general" else canonical_batch(6, seed=7)
    ours = NPairLoss(l2_reg=0.0, pairs="npair", normalize_embeddings=normalize)
    theirs = pml_losses.NPairsLoss(distance=DotProductSimilarity(normalize_embeddings=normalize))
    assert_same_value_and_grad(lambda x: ours(x, labels), lambda x: theirs(x, labels), embeddings)
