import math
import warnings

import pytest
import torch
import torch.nn.functional as F

from dmlnotes.distances import CosineSimilarity, Distance, EuclideanDistance
from dmlnotes.losses import RankedListLoss
from loss_testing import PAIRWISE_TOLERANCES, assert_same_value_and_grad


def loop_ranked_list(
    embeddings,
    labels,
    alpha=1.2,
    margin=0.4,
    temperature=10.0,
    negative_weight=1.0,
    weights_as_constants=True,
    normalize=True,
    similarity=False,
):
    """The paper's per-query loss, query by query and pair by pair (torch scalars, for gradients).

    Distances are ``|v_i - v_j|`` of the (normalised) embeddings, or cosines with ``similarity``
    (then positives must exceed ``alpha + margin``, negatives stay below ``alpha``)."""
    vectors = F.normalize(embeddings, dim=1) if normalize or similarity else embeddings
    ids = labels.tolist()
    queries = []
    for i in range(len(ids)):
        positive_costs, negative_costs, weights = [], [], []
        for j in range(len(ids)):
            if j == i:
                continue
            if similarity:
                s = (vectors[i] * vectors[j]).sum()
                positive_cost, negative_cost = alpha + margin - s, s - alpha
            else:
                d = torch.sqrt(((vectors[i] - vectors[j]) ** 2).sum())
                positive_cost, negative_cost = d - (alpha - margin), alpha - d
            if ids[j] == ids[i] and positive_cost > 0:
                positive_costs.append(positive_cost)
            elif ids[j] != ids[i] and negative_cost > 0:
                weight = torch.exp(temperature * negative_cost)
                weights.append(weight.detach() if weights_as_constants else weight)
                negative_costs.append(negative_cost)
        term = embeddings.new_zeros(())
        if positive_costs:
            term = term + sum(positive_costs) / len(positive_costs)
        if negative_costs:
            term = term + negative_weight * sum(w * c for w, c in zip(weights, negative_costs)) / sum(weights)
        queries.append(term)
    return torch.stack(queries).mean()


def clustered_batch(dtype, n_per_class=4, num_classes=4, dim=6, seed=0, spread=0.6):
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(num_classes).repeat_interleave(n_per_class)
    centres = torch.randn(num_classes, dim, generator=generator, dtype=torch.float64)
    embeddings = centres[labels] + spread * torch.randn(len(labels), dim, generator=generator, dtype=torch.float64)
    return embeddings.to(dtype), labels


@pytest.mark.parametrize("weights_as_constants", [True, False])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_values_and_gradients_match_a_loop(dtype, weights_as_constants):
    embeddings, labels = clustered_batch(dtype)
    loss_fn = RankedListLoss(weights_as_constants=weights_as_constants)
    assert_same_value_and_grad(
        lambda x: loss_fn(x, labels),
        lambda x: loop_ranked_list(x, labels, weights_as_constants=weights_as_constants),
        embeddings,
        tol=PAIRWISE_TOLERANCES[dtype],
    )
    # Both parts are at work on this batch: violating positives and violating negatives.
    positive_part = float(RankedListLoss(negative_weight=0.0)(embeddings, labels))
    assert 0 < positive_part < float(loss_fn(embeddings, labels))
    assert loss_fn.last_stats.num_terms == len(labels)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_other_settings_and_a_similarity_match_the_loop(dtype):
    embeddings, labels = clustered_batch(dtype, seed=3, spread=1.0)
    labels = labels.clone()
    labels[0] = 9  # a query without positives still pushes its negatives
    settings = dict(alpha=0.9, margin=0.2, negative_temperature=3.0, negative_weight=0.5)
    assert_same_value_and_grad(
        lambda x: RankedListLoss(**settings, distance=EuclideanDistance())(x, labels),
        lambda x: loop_ranked_list(x, labels, 0.9, 0.2, 3.0, 0.5, normalize=False),  # plain distances, not normalised
        embeddings * 0.5,
        tol=PAIRWISE_TOLERANCES[dtype],
    )
    assert_same_value_and_grad(
        lambda x: RankedListLoss(alpha=0.1, margin=0.5, distance=CosineSimilarity())(x, labels),
        lambda x: loop_ranked_list(x, labels, 0.1, 0.5, similarity=True),
        embeddings,
        tol=PAIRWISE_TOLERANCES[dtype],
    )


def test_hand_computed_points_on_a_line():
    # 1-D points 0, 0.8 (class 0) and 0.5, 1.5 (class 1), plain distances, alpha = 1, m = 0.4
    # (positives within 0.6), T_n = 5 ln 3 so that exp(0.2 T_n) = 3.
    # Distances: d01 = 0.8, d02 = 0.5, d03 = 1.5, d12 = 0.3, d13 = 0.7, d23 = 1.0.
    # Query 0: positive 1 violates by 0.2; negative 2 by 0.5 (alone)               -> 0.2 + 0.5 = 0.7
    # Query 1: positive 0 by 0.2; negatives 2 (0.7) and 3 (0.3), weights 9 : 1     -> 0.2 + 6.6 / 10 = 0.86
    # Query 2: positive 3 by 0.4; negatives 0 (0.5) and 1 (0.7), weights 1 : 3     -> 0.4 + 2.6 / 4 = 1.05
    # Query 3: positive 2 by 0.4; negative 1 (0.3) alone                           -> 0.4 + 0.3 = 0.7
    embeddings = torch.tensor([[0.0], [0.8], [0.5], [1.5]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1])
    loss_fn = RankedListLoss(alpha=1.0, margin=0.4, negative_temperature=5 * math.log(3), distance=EuclideanDistance())
    assert float(loss_fn(embeddings, labels)) == pytest.approx((0.7 + 0.86 + 1.05 + 0.7) / 4, rel=1e-12)
    loss_fn.reduction = "sum"
    assert float(loss_fn(embeddings, labels)) == pytest.approx(3.31, rel=1e-12)


def test_zero_when_every_positive_is_inside_and_every_negative_outside():
    # Two classes near orthogonal unit vectors: positives about 0.1 apart (< alpha - m = 0.8),
    # negatives about sqrt(2) = 1.41 apart (> alpha = 1.2).
    generator = torch.Generator().manual_seed(0)
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    embeddings = torch.eye(2, dtype=torch.float64)[labels] + 0.03 * torch.randn(6, 2, generator=generator)
    embeddings.requires_grad_()
    loss_fn = RankedListLoss()
    loss = loss_fn(embeddings, labels)
    loss.backward()
    assert loss.item() == 0.0 and torch.all(embeddings.grad == 0)
    assert loss_fn.last_stats.num_terms == 6 and loss_fn.last_stats.num_active == 0


def test_queries_without_violations_count_in_the_mean_but_not_in_mean_nonzero():
    # Same points as the hand-computed case plus two far-away samples of a third class, 10 and 10.2:
    # their queries violate nothing (positive 0.2 < 0.6, negatives >= 8.5 > 1), and the four old
    # queries keep their terms (the new samples are no violating negatives for them).
    embeddings = torch.tensor([[0.0], [0.8], [0.5], [1.5], [10.0], [10.2]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    settings = dict(alpha=1.0, margin=0.4, negative_temperature=5 * math.log(3), distance=EuclideanDistance())
    values = {}
    for reduction in ("mean", "mean_nonzero", "sum"):
        loss_fn = RankedListLoss(**settings, reduction=reduction)
        values[reduction] = float(loss_fn(embeddings, labels))
        assert loss_fn.last_stats.num_terms == 6 and loss_fn.last_stats.num_active == 4
    assert values["sum"] == pytest.approx(3.31, rel=1e-12)
    assert values["mean"] == pytest.approx(3.31 / 6, rel=1e-12)
    assert values["mean_nonzero"] == pytest.approx(3.31 / 4, rel=1e-12)


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
def test_a_huge_temperature_stays_finite_and_keeps_the_hardest_negative(dtype):
    embeddings, labels = clustered_batch(torch.float64, seed=1, spread=1.0)
    loss_fn = RankedListLoss(negative_temperature=1e6, negative_weight=1.0)
    x = embeddings.to(dtype).clone().requires_grad_()
    loss = loss_fn(x, labels)
    loss.backward()
    loss = loss.detach()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()
    # With T_n -> infinity L_N is the largest violation of the query's negatives.
    vectors = F.normalize(embeddings, dim=1)
    distances = torch.cdist(vectors, vectors)
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    eye = torch.eye(len(labels), dtype=torch.bool)
    positive_cost = (distances - 0.8).clamp_min(0).masked_fill(~same | eye, 0)
    positive_part = positive_cost.sum(1) / ((positive_cost > 0).sum(1).clamp_min(1))
    hardest = (1.2 - distances).clamp_min(0).masked_fill(same, 0).amax(dim=1)
    expected = float((positive_part + hardest).mean())
    assert float(loss) == pytest.approx(expected, rel={torch.float16: 1e-2}.get(dtype, 1e-5))


class GivenDistances(Distance):
    """A "distance" that returns a fixed matrix, so the loss's gradient per pair can be read off."""

    def __init__(self, matrix):
        super().__init__()
        self.matrix = matrix

    def pairwise(self, x, y):
        return self.matrix


def test_differentiated_weights_pull_an_easy_violating_negative_inwards():
    # Only query 0 violates anything: positive 1 at 0.1, negatives 2 at 0.5 (violation 0.7) and
    # 3 at 1.1 (violation 0.1); alpha = 1.2, T_n = 10, weights e^7 : e^1. L_N is about 0.699, so
    # the easy negative's violation 0.1 < L_N - 1/T_n: differentiating the weights makes the loss
    # fall as d_03 *shrinks*; as constants they push it out with the share of its weight.
    far = 2.0
    rows = [[0.0, 0.1, 0.5, 1.1], [0.1, 0.0, far, far], [far, far, 0.0, far], [far, far, far, 0.0]]
    labels = torch.tensor([0, 0, 1, 2])
    grads = {}
    for constants in (True, False):
        matrix = torch.tensor(rows, dtype=torch.float64, requires_grad=True)
        loss_fn = RankedListLoss(weights_as_constants=constants, distance=GivenDistances(matrix), reduction="sum")
        loss_fn(torch.zeros(4, 1, dtype=torch.float64), labels).backward()
        grads[constants] = matrix.grad[0, 3].item()
    share = math.exp(1) / (math.exp(7) + math.exp(1))
    assert grads[True] == pytest.approx(-share, rel=1e-12)
    negative_part = (0.7 * math.exp(7) + 0.1 * math.exp(1)) / (math.exp(7) + math.exp(1))
    # d/dd of the softmax-weighted mean: -w (1 + T_n (violation - L_N)).
    assert grads[False] == pytest.approx(-share * (1 + 10 * (0.1 - negative_part)), rel=1e-12)
    assert grads[False] > 0


def test_half_of_pytorch_metric_learning_at_imbalance_one_half():
    from pytorch_metric_learning.losses import RankedListLoss as PMLRankedListLoss

    embeddings, labels = clustered_batch(torch.float64, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PML warns about T_n > 5 (its weights are not shifted)
        theirs_fn = PMLRankedListLoss(margin=0.4, Tn=10.0, imbalance=0.5, alpha=1.2)
    ours_fn = RankedListLoss(alpha=1.2, margin=0.4, negative_temperature=10.0, weights_as_constants=False)
    # PML adds 1e-5 per batch column to each denominator: relative error about 1e-5 * 16 / |P*|.
    tol = dict(rtol=2e-4, atol=1e-8)
    ours, ours_grad = _value_and_grad(ours_fn, embeddings, labels)
    theirs, theirs_grad = _value_and_grad(theirs_fn, embeddings, labels)
    torch.testing.assert_close(ours / 2, theirs, **tol)
    torch.testing.assert_close(ours_grad / 2, theirs_grad, rtol=2e-4, atol=2e-4 * float(theirs_grad.abs().max()))


def _value_and_grad(loss_fn, embeddings, labels):
    x = embeddings.detach().clone().requires_grad_()
    value = loss_fn(x, labels)
    value.backward()
    return value.detach(), x.grad


def test_bad_parameters_are_named():
    for kwargs, name in [
        (dict(alpha=0.0), "alpha"),
        (dict(alpha=float("nan")), "alpha"),
        (dict(margin=-0.1), "margin"),
        (dict(alpha=0.5, margin=0.6), "margin must be at most alpha"),
        (dict(negative_temperature=-1.0), "negative_temperature"),
        (dict(negative_weight=float("inf")), "negative_weight"),
        (dict(distance="euclidean"), "distance must be"),
    ]:
        with pytest.raises(ValueError, match=name):
            RankedListLoss(**kwargs)
    RankedListLoss(alpha=-0.2, margin=0.5, distance=CosineSimilarity())  # a cosine threshold may be negative


def test_refuses_a_miners_tuple():
    embeddings, labels = clustered_batch(torch.float64)
    with pytest.raises(ValueError, match="does not take an indices_tuple"):
        RankedListLoss()(embeddings, labels, (torch.tensor([0]), torch.tensor([1]), torch.tensor([5])))
