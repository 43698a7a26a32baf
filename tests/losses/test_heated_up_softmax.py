"""Tests of dmlnotes.losses.heated_up_softmax (survey eqs. (20)-(23), Zhang et al. 2018)."""

import math

import pytest
import torch

from dmlnotes.losses import HeatedUpSoftmaxLoss, NormSoftmaxLoss
from dmlnotes.losses.heated_up_softmax import HeatUpSchedule
from loss_testing import (
    DTYPES,
    assert_loss_and_finite_gradients,
    assert_same_value_and_weight_grads,
    make_weighted_problem,
    set_weights,
)
from loss_testing import SOFTMAX_TOLERANCES as TOL


def brute_heated_up(embeddings, weights, labels, alpha):
    """Eqs. (20)-(21) with one-hot p: -log q(y|x), q = softmax(alpha * cos); sample by sample."""
    total = 0.0
    for i in range(embeddings.shape[0]):
        f = embeddings[i] / embeddings[i].norm()
        exps = [torch.exp(alpha * (f @ (weights[m] / weights[m].norm()))) for m in range(weights.shape[0])]
        total = total - torch.log(exps[int(labels[i])] / sum(exps))
    return total / embeddings.shape[0]


def make_problem(dtype, n=8, dim=3, num_classes=4, seed=0, alpha=4.0):
    return make_weighted_problem(HeatedUpSoftmaxLoss, dtype, n, dim, num_classes, seed, alpha=alpha)


def unit(degrees):
    return [math.cos(math.radians(degrees)), math.sin(math.radians(degrees))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("alpha", [1.0, 8.0])
def test_matches_brute_force_values_and_gradients(dtype, alpha):
    loss_fn, embeddings, labels = make_problem(dtype, alpha=alpha)
    assert_same_value_and_weight_grads(
        loss_fn, embeddings, labels, lambda e, w: brute_heated_up(e, w, labels, alpha), TOL[dtype]
    )


@pytest.mark.parametrize("alpha", [1.0, 16.0, 200.0])
def test_equals_norm_softmax_at_temperature_one_over_alpha(alpha):
    heated = HeatedUpSoftmaxLoss(5, 4, alpha=alpha).double()
    norm_softmax = NormSoftmaxLoss(5, 4, temperature=1.0 / alpha).double()
    norm_softmax.load_state_dict(heated.state_dict())
    torch.manual_seed(1)
    embeddings = torch.randn(9, 4, dtype=torch.float64, requires_grad=True)
    twin = embeddings.detach().clone().requires_grad_()
    labels = torch.randint(0, 5, (9,))
    ours, theirs = heated(embeddings, labels), norm_softmax(twin, labels)
    torch.testing.assert_close(ours, theirs)
    ours.backward()
    theirs.backward()
    torch.testing.assert_close(embeddings.grad, twin.grad)
    torch.testing.assert_close(heated.weight.grad, norm_softmax.weight.grad)
    assert isinstance(heated, NormSoftmaxLoss)


def test_by_hand_two_orthogonal_classes():
    # w_0 = (1, 0), w_1 = (0, 1), alpha = 2.
    # Sample at 60 degrees, label 0: cosines (1/2, sqrt(3)/2), logits (1, sqrt 3),
    #   loss log(1 + e^(sqrt 3 - 1)) = 1.1247155.
    # Sample at 45 degrees (twice as long), label 1: equal logits, loss log 2 = 0.6931472.
    # Mean: 0.9089313.
    loss_fn = HeatedUpSoftmaxLoss(2, 2, alpha=2.0).double()
    set_weights(loss_fn, [[1.0, 0.0], [0.0, 1.0]])
    embeddings = torch.tensor([unit(60), [2 * c for c in unit(45)]], dtype=torch.float64)
    expected = (1.1247154719110695 + math.log(2.0)) / 2
    torch.testing.assert_close(loss_fn(embeddings, torch.tensor([0, 1])), torch.tensor(expected, dtype=torch.float64))
    # On the bisector the loss is log 2 whatever alpha is.
    loss_fn.alpha = 50.0
    torch.testing.assert_close(
        loss_fn(embeddings[1:], torch.tensor([1])), torch.tensor(math.log(2.0), dtype=torch.float64)
    )


def test_heating_up_gives_well_classified_samples_more_gradient_and_misclassified_less():
    # A sample 10 degrees from its weight: with alpha = 16 its gradient is about 4e-5, with
    # alpha = 4 about 0.17. A sample 10 degrees from the wrong weight: about 18.5 at
    # alpha = 16 and 4.5 at alpha = 4 (the part of alpha * (w_1 - w_0) tangent to the circle).
    loss_fn = HeatedUpSoftmaxLoss(2, 2).double()
    set_weights(loss_fn, [[1.0, 0.0], [0.0, 1.0]])

    def gradient_norm(alpha, degrees):
        loss_fn.alpha = alpha
        embedding = torch.tensor([unit(degrees)], dtype=torch.float64, requires_grad=True)
        loss_fn(embedding, torch.tensor([0])).backward()
        return embedding.grad.norm().item()

    assert gradient_norm(4.0, 10) > 100 * gradient_norm(16.0, 10)
    assert gradient_norm(16.0, 80) > 2 * gradient_norm(4.0, 80)


@pytest.mark.parametrize("alpha", [200.0, 1000.0])
def test_large_alpha_is_finite_in_float32_even_when_misclassified(alpha):
    # Sample on w_1 labelled 0: logits (0, alpha), loss alpha + log(1 + e^-alpha) = alpha.
    loss_fn = HeatedUpSoftmaxLoss(2, 2, alpha=alpha)
    set_weights(loss_fn, [[1.0, 0.0], [0.0, 1.0]], dtype=torch.float32)
    embeddings = torch.tensor([[0.0, 1.0]], requires_grad=True)
    assert_loss_and_finite_gradients(loss_fn, embeddings, torch.tensor([0]), torch.tensor(alpha))


def test_alpha_and_temperature_are_two_views_of_one_setting():
    loss_fn = HeatedUpSoftmaxLoss(3, 2)
    assert loss_fn.alpha == 16.0 and loss_fn.temperature == 1 / 16
    loss_fn.alpha = 4.0
    assert loss_fn.temperature == 0.25 and loss_fn.logit_scale == 4.0
    loss_fn.temperature = 0.5
    assert loss_fn.alpha == 2.0


@pytest.mark.parametrize("bad", [0.0, -16.0, float("nan"), float("inf")])
def test_bad_alpha_raises_at_construction_and_assignment(bad):
    with pytest.raises(ValueError, match="alpha"):
        HeatedUpSoftmaxLoss(3, 2, alpha=bad)
    loss_fn = HeatedUpSoftmaxLoss(3, 2)
    with pytest.raises(ValueError, match="alpha"):
        loss_fn.alpha = bad
    with pytest.raises(ValueError, match="temperature"):
        loss_fn.temperature = bad
    assert loss_fn.alpha == 16.0


def test_bad_labels_and_a_miner_tuple_raise():
    with pytest.raises(ValueError, match="0..2"):
        HeatedUpSoftmaxLoss(3, 2)(torch.randn(2, 2), torch.tensor([3, 0]))
    with pytest.raises(ValueError, match="HeatedUpSoftmaxLoss does not take an indices_tuple"):
        HeatedUpSoftmaxLoss(3, 2)(torch.randn(2, 2), torch.tensor([1, 0]), (torch.tensor([0]),) * 3)


def test_batch_permutation_invariance():
    loss_fn, embeddings, labels = make_problem(torch.float64, n=12)
    permutation = torch.randperm(12, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(loss_fn(embeddings[permutation], labels[permutation]), loss_fn(embeddings, labels))


# The heat-up schedule -------------------------------------------------------------------------
def test_schedule_switches_alpha_at_the_heat_up_step():
    schedule = HeatUpSchedule(heat_up_step=3, alpha_start=16.0, alpha_end=4.0)
    assert [schedule.alpha_at(step) for step in range(5)] == [16.0, 16.0, 16.0, 4.0, 4.0]
    loss_fn = HeatedUpSoftmaxLoss(3, 2, alpha=1.0)
    assert schedule.update(loss_fn, 0) == 16.0 and loss_fn.alpha == 16.0
    assert schedule.update(loss_fn, 7) == 4.0 and loss_fn.alpha == 4.0


def test_schedule_as_fit_callback_sets_alpha_for_the_next_step():
    # fit calls callback(step, history) after optimiser step `step` (counted from 1).
    schedule = HeatUpSchedule(heat_up_step=2, alpha_start=10.0, alpha_end=2.0)
    loss_fn = HeatedUpSoftmaxLoss(3, 2, alpha=1.0)
    callback = schedule.as_callback(loss_fn)
    alphas = [loss_fn.alpha]  # used by step 0
    for step in range(1, 4):
        callback(step, None)
        alphas.append(loss_fn.alpha)  # used by step `step`
    assert alphas == [10.0, 10.0, 2.0, 2.0]


def test_schedule_defaults_follow_the_reference_code():
    # Reference code: alpha = 16, multiplied by 0.25 at the heat-up point.
    schedule = HeatUpSchedule(heat_up_step=60)
    assert schedule.alpha_start == 16.0 and schedule.alpha_end == 16.0 * 0.25


def test_schedule_rejects_bad_settings():
    with pytest.raises(ValueError, match="heat_up_step"):
        HeatUpSchedule(heat_up_step=-1)
    with pytest.raises(ValueError, match="heat_up_step"):
        HeatUpSchedule(heat_up_step=2.5)
    with pytest.raises(ValueError, match="alpha_end"):
        HeatUpSchedule(heat_up_step=2, alpha_end=0.0)
    with pytest.raises(ValueError, match="alpha_start"):
        HeatUpSchedule(heat_up_step=2, alpha_start=float("nan"))
