"""Tests of dmlnotes.losses.contrastive against a brute-force loop over pairs, hand-computed
cases, properties, bad input, and pytorch-metric-learning's ContrastiveLoss."""

import pytest
import torch

from dmlnotes.distances import CosineSimilarity, EuclideanDistance
from dmlnotes.losses import ContrastiveLoss
from dmlnotes.miners import AllTripletsMiner, BatchHardMiner
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
    """Distance (or similarity) between rows i and j, written out element by element."""
    if kind == "cosine":
        return (x[i] * x[j]).sum() / torch.sqrt((x[i] * x[i]).sum() * (x[j] * x[j]).sum())
    squared = ((x[i] - x[j]) ** 2).sum()
    return squared if kind == "squared" else torch.sqrt(squared)


def brute_contrastive(x, labels, margin, pos_margin=0.0, kind="squared", reduction="mean", pairs=None):
    """Eq. (1) pair by pair; ``pairs`` is a list of (i, j), default every i < j."""
    n = len(labels)
    if pairs is None:
        pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    terms = []
    for i, j in pairs:
        value = pair_value(x, i, j, kind)
        same = int(labels[i]) == int(labels[j])
        if kind == "cosine":
            term = torch.clamp(pos_margin - value, min=0) if same else torch.clamp(value - margin, min=0)
        else:
            term = torch.clamp(value - pos_margin, min=0) if same else torch.clamp(margin - value, min=0)
        terms.append(term)
    return reduce_terms(terms, reduction)


def random_batch(dtype, seed=0):
    return random_embeddings(len(LABELS), 3, dtype, seed, scale=0.6)


CONFIGS = {
    # name: (constructor kwargs, brute-force kwargs)
    "survey_squared": (dict(margin=1.0), dict(margin=1.0, kind="squared")),
    "plain_with_pos_margin": (
        dict(margin=1.2, distance=EuclideanDistance(), pos_margin=0.3),
        dict(margin=1.2, pos_margin=0.3, kind="plain"),
    ),
    "squared_mean_nonzero": (
        dict(margin=1.0, pos_margin=0.2, reduction="mean_nonzero"),
        dict(margin=1.0, pos_margin=0.2, kind="squared", reduction="mean_nonzero"),
    ),
    "cosine": (
        dict(distance=CosineSimilarity(), margin=0.1, pos_margin=0.8),
        dict(margin=0.1, pos_margin=0.8, kind="cosine"),
    ),
}


@pytest.mark.parametrize("dtype, tol", DTYPE_AND_TOL)
@pytest.mark.parametrize("config", list(CONFIGS))
def test_matches_brute_force_values_and_gradients(config, dtype, tol):
    loss_kwargs, brute_kwargs = CONFIGS[config]
    x = random_batch(dtype)
    loss_fn = ContrastiveLoss(**loss_kwargs)
    value, _ = assert_same_value_and_grad(
        lambda e: loss_fn(e, LABELS),
        lambda e: brute_contrastive(e, LABELS, **brute_kwargs),
        x,
        tol=dict(rtol=tol, atol=tol),
        grad_tol=dict(rtol=10 * tol, atol=10 * tol),
    )
    assert value.dtype == dtype
    # The batch must exercise both sides of every hinge, or the test proves little.
    stats = loss_fn.last_stats
    assert stats.num_terms == len(LABELS) * (len(LABELS) - 1) // 2
    assert 0 < stats.num_active < stats.num_terms


def test_hand_computed_survey_form():
    # 1-D embeddings 0, 1, 3 with labels 0, 0, 1 and alpha = 5 on squared distances:
    #   (0, 1) positive: d^2 = 1             -> 1
    #   (0, 2) negative: d^2 = 9, [5 - 9]_+  -> 0
    #   (1, 2) negative: d^2 = 4, [5 - 4]_+  -> 1
    # mean over the 3 pairs = 2 / 3.
    x = torch.tensor([[0.0], [1.0], [3.0]])
    labels = torch.tensor([0, 0, 1])
    loss_fn = ContrastiveLoss(margin=5.0)
    assert loss_fn(x, labels).item() == pytest.approx(2 / 3)
    assert (loss_fn.last_stats.num_terms, loss_fn.last_stats.num_active) == (3, 2)


def test_hand_computed_plain_form_and_mean_nonzero():
    # Same points, plain distances, margin 2.5:
    #   (0, 1) positive: d = 1                 -> 1
    #   (0, 2) negative: d = 3, [2.5 - 3]_+    -> 0
    #   (1, 2) negative: d = 2, [2.5 - 2]_+    -> 0.5
    # "mean": (1 + 0 + 0.5) / 3 = 0.5; "mean_nonzero": (1 + 0.5) / 2 = 0.75.
    x = torch.tensor([[0.0], [1.0], [3.0]])
    labels = torch.tensor([0, 0, 1])
    assert ContrastiveLoss(margin=2.5, distance=EuclideanDistance())(x, labels).item() == pytest.approx(0.5)
    assert ContrastiveLoss(margin=2.5, distance=EuclideanDistance(), reduction="mean_nonzero")(
        x, labels
    ).item() == pytest.approx(0.75)
    # With pos_margin 0.5 the positive costs [1 - 0.5]_+ = 0.5: (0.5 + 0 + 0.5) / 3 = 1/3.
    assert ContrastiveLoss(margin=2.5, distance=EuclideanDistance(), pos_margin=0.5)(x, labels).item() == pytest.approx(
        1 / 3
    )


def test_pair_tuple_uses_exactly_those_pairs():
    x = random_batch(torch.float64)
    # positives (0, 2), (5, 0), negatives (0, 1), (3, 9), (9, 3): ordered pairs as given.
    pairs = (torch.tensor([0, 5]), torch.tensor([2, 0]), torch.tensor([0, 3, 9]), torch.tensor([1, 9, 3]))
    loss_fn = ContrastiveLoss(margin=1.0)
    listed = [(0, 2), (5, 0), (0, 1), (3, 9), (9, 3)]
    assert_same_value_and_grad(
        lambda e: loss_fn(e, LABELS, pairs), lambda e: brute_contrastive(e, LABELS, 1.0, pairs=listed), x
    )
    assert loss_fn.last_stats.num_terms == 5


@pytest.mark.parametrize("miner", [AllTripletsMiner(), BatchHardMiner()], ids=["all", "batch_hard"])
def test_triplets_become_one_positive_and_one_negative_pair_each(miner):
    x = random_batch(torch.float64)
    anchors, positives, negatives = miner(x, LABELS)
    listed = [(int(a), int(p)) for a, p in zip(anchors, positives)] + [
        (int(a), int(n)) for a, n in zip(anchors, negatives)
    ]
    loss_fn = ContrastiveLoss(margin=1.0, distance=EuclideanDistance())
    value = loss_fn(x, LABELS, (anchors, positives, negatives))
    expected = brute_contrastive(x, LABELS, 1.0, kind="plain", pairs=listed)
    torch.testing.assert_close(value, expected)
    assert loss_fn.last_stats.num_terms == 2 * anchors.numel()


def test_batch_permutation_invariance():
    x = random_batch(torch.float64)
    permutation = torch.randperm(len(LABELS), generator=torch.Generator().manual_seed(1))
    loss_fn = ContrastiveLoss(margin=1.0)
    torch.testing.assert_close(loss_fn(x, LABELS), loss_fn(x[permutation], LABELS[permutation]))


def test_zero_when_classes_are_tight_and_farther_apart_than_the_margin():
    # Class 0 near (0, 0), class 1 near (5, 0): positives within pos_margin 0.3,
    # negatives about 5 apart, beyond margin 2.
    jitter = 0.05 * torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    x = torch.cat([jitter, jitter + torch.tensor([5.0, 0.0])])
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    loss_fn = ContrastiveLoss(margin=2.0, distance=EuclideanDistance(), pos_margin=0.3)
    assert loss_fn(x, labels).item() == 0.0
    assert loss_fn.last_stats.num_active == 0
    # The survey's form has no pos_margin: only identical positives cost nothing.
    identical = torch.tensor([[0.0, 0.0], [0.0, 0.0], [3.0, 0.0], [3.0, 0.0]])
    assert ContrastiveLoss(margin=4.0)(identical, torch.tensor([0, 0, 1, 1])).item() == 0.0


def test_mean_nonzero_of_an_all_zero_batch_is_an_attached_zero():
    x = torch.tensor([[0.0], [0.0], [5.0]], requires_grad=True)
    loss = ContrastiveLoss(margin=1.0, reduction="mean_nonzero")(x, torch.tensor([0, 0, 1]))
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.all(x.grad == 0)


@pytest.mark.parametrize(
    "batch",
    [
        "single_sample",
        "empty_miner_tuple",
    ],
)
def test_empty_batch_gives_attached_zero_and_warns(batch):
    if batch == "single_sample":
        x, labels, indices = torch.randn(1, 4, requires_grad=True), torch.tensor([3]), None
    else:
        empty = torch.empty(0, dtype=torch.long)
        x, labels, indices = torch.randn(5, 4, requires_grad=True), torch.arange(5), (empty, empty, empty)
    check_empty_batch(ContrastiveLoss(warn_if_empty=True), ContrastiveLoss(), x, labels, indices)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(margin=-1.0), "pos_margin <= margin"),
        (dict(margin=1.0, pos_margin=2.0), "pos_margin <= margin"),
        (dict(margin=float("nan")), "finite"),
        (dict(margin="1"), "finite number"),
        (dict(distance="euclidean"), "Distance"),
        (dict(reduction="median"), "reduction"),
        (dict(distance=CosineSimilarity(), margin=0.9, pos_margin=0.3), "margin <= pos_margin"),
    ],
)
def test_bad_parameters_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ContrastiveLoss(**kwargs)


@pytest.mark.parametrize(
    "indices, message",
    [
        ((torch.tensor([0]), torch.tensor([2])), "tuple of 3"),
        ((torch.tensor([0, 5]), torch.tensor([2]), torch.tensor([1]), torch.tensor([3])), "same lengths"),
        ((torch.tensor([0]), torch.tensor([20]), torch.tensor([1])), "outside the batch"),
        ((torch.tensor([0.0]), torch.tensor([2.0]), torch.tensor([1.0])), "integer"),
        ((torch.tensor([0]), torch.tensor([1]), torch.tensor([2])), "positive"),  # (a, n, p) order
    ],
)
def test_bad_indices_tuple_raises(indices, message):
    with pytest.raises(ValueError, match=message):
        ContrastiveLoss()(random_batch(torch.float32), LABELS, indices)


def test_bad_batch_raises():
    with pytest.raises(ValueError, match="embeddings"):
        ContrastiveLoss()(torch.randn(10), LABELS)
    with pytest.raises(ValueError, match="batch size"):
        ContrastiveLoss()(torch.randn(9, 3), LABELS)


# Agreement with pytorch-metric-learning -------------------------------------------------
@pytest.mark.parametrize(
    "ours, pml_distance, pos_margin, neg_margin",
    [
        (dict(margin=1.0, pos_margin=0.1), dict(name="LpDistance", power=2), 0.1, 1.0),
        (dict(margin=1.3, pos_margin=0.4, distance=EuclideanDistance()), dict(name="LpDistance", power=1), 0.4, 1.3),
        (dict(distance=CosineSimilarity(), margin=0.2, pos_margin=0.7), dict(name="CosineSimilarity"), 0.7, 0.2),
    ],
    ids=["squared", "plain", "cosine"],
)
@pytest.mark.parametrize("reduction", ["mean", "mean_nonzero"])
def test_agrees_with_pytorch_metric_learning_per_pair_terms(ours, pml_distance, pos_margin, neg_margin, reduction):
    pml = pytest.importorskip("pytorch_metric_learning")
    from pytorch_metric_learning import distances, losses, reducers

    kwargs = dict(pml_distance)
    distance_class = getattr(distances, kwargs.pop("name"))
    if distance_class is distances.LpDistance:
        kwargs.update(normalize_embeddings=False, p=2)
    pml_loss = losses.ContrastiveLoss(
        pos_margin=pos_margin,
        neg_margin=neg_margin,
        distance=distance_class(**kwargs),
        reducer=reducers.DoNothingReducer(),
    )

    def pml_reduced(e):
        # PML gives per-pair terms over ordered pairs; reduce them the way our loss documents.
        output = pml_loss(e, LABELS)
        terms = torch.cat([output["pos_loss"]["losses"], output["neg_loss"]["losses"]])
        if reduction == "mean":
            return terms.mean()
        return terms.sum() / (terms > 0).sum()

    assert pml.__version__
    x = random_batch(torch.float64, seed=3)
    loss_fn = ContrastiveLoss(reduction=reduction, **ours)
    assert_same_value_and_grad(lambda e: loss_fn(e, LABELS), pml_reduced, x)
