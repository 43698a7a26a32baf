"""Tests of dmlnotes.losses.norm_softmax (survey eq. (19), Zhai & Wu 2018)."""

import math

import pytest
import torch

from dmlnotes.losses import NormSoftmaxLoss
from loss_testing import (
    DTYPES,
    assert_attached_zero_and_warning,
    assert_loss_and_finite_gradients,
    assert_same_value_and_weight_grads,
    make_weighted_problem,
    set_weights,
)
from loss_testing import SOFTMAX_TOLERANCES as TOL


def brute_norm_softmax(embeddings, weights, labels, temperature):
    """Eq. (19) sample by sample, class by class; differentiable in both inputs."""
    total = 0.0
    for i in range(embeddings.shape[0]):
        x = embeddings[i] / embeddings[i].norm()
        exps = [torch.exp((x @ (weights[c] / weights[c].norm())) / temperature) for c in range(weights.shape[0])]
        total = total - torch.log(exps[int(labels[i])] / sum(exps))
    return total / embeddings.shape[0]


def make_problem(dtype, n=8, dim=3, num_classes=4, seed=0, **loss_kwargs):
    return make_weighted_problem(NormSoftmaxLoss, dtype, n, dim, num_classes, seed, **loss_kwargs)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("temperature", [1.0, 0.5, 0.1])
def test_matches_brute_force_values_and_gradients(dtype, temperature):
    loss_fn, embeddings, labels = make_problem(dtype, temperature=temperature)
    assert_same_value_and_weight_grads(
        loss_fn, embeddings, labels, lambda e, w: brute_norm_softmax(e, w, labels, temperature), TOL[dtype]
    )
    assert loss_fn.last_stats.num_terms == len(labels)


def test_by_hand_two_orthogonal_classes():
    # Class weights along the axes (given with norms 2 and 3; normalisation removes them),
    # T = 0.5, so the logits are 2 cos.
    # Sample (3, 0), label 0: logits (2, 0), loss log(1 + e^-2) = 0.1269280.
    # Sample (0, 2), label 0, misclassified: logits (0, 2), loss log(1 + e^2) = 2.1269280.
    # Mean: 1.1269280.
    loss_fn = NormSoftmaxLoss(2, 2, temperature=0.5).double()
    set_weights(loss_fn, [[2.0, 0.0], [0.0, 3.0]])
    embeddings = torch.tensor([[3.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0])
    torch.testing.assert_close(loss_fn(embeddings, labels), torch.tensor(1.1269280110429726, dtype=torch.float64))
    torch.testing.assert_close(loss_fn.logits(embeddings), torch.tensor([[2.0, 0.0], [0.0, 2.0]], dtype=torch.float64))
    # Softmax probability of the true class of the first sample: 1 / (1 + e^-2) = 0.8807971.
    torch.testing.assert_close(
        loss_fn.class_probabilities(embeddings)[0, 0], torch.tensor(0.8807970779778823, dtype=torch.float64)
    )


def test_logits_lie_in_plus_minus_one_over_t():
    loss_fn, embeddings, _ = make_problem(torch.float64, n=64, dim=2, num_classes=6, temperature=0.05)
    logits = loss_fn.logits(embeddings)
    assert logits.abs().max() <= 20.0 + 1e-9
    assert logits.max() > 15.0  # 64 random 2-D directions come close to some class weight


@pytest.mark.parametrize("temperature", [0.005, 0.001])
def test_low_temperature_is_finite_in_float32_even_when_misclassified(temperature):
    # Sample on w_1 labelled 0, w_0 orthogonal: logits (0, 1/T), loss 1/T + log(1 + e^(-1/T)) = 1/T.
    loss_fn = NormSoftmaxLoss(2, 2, temperature=temperature)
    set_weights(loss_fn, [[1.0, 0.0], [0.0, 1.0]], dtype=torch.float32)
    embeddings = torch.tensor([[0.0, 1.0]], requires_grad=True)
    assert_loss_and_finite_gradients(loss_fn, embeddings, torch.tensor([0]), torch.tensor(1.0 / temperature))


@pytest.mark.parametrize("temperature", [0.005, 0.001])
def test_low_temperature_random_batch_is_finite_in_float32(temperature):
    # Logits of +-200 and +-1000: an exp-then-log implementation overflows here.
    loss_fn, embeddings, labels = make_problem(torch.float32, n=16, dim=8, num_classes=10, temperature=temperature)
    loss = loss_fn(embeddings, labels)
    loss.backward()
    assert torch.isfinite(loss) and loss.item() > 0
    assert torch.isfinite(embeddings.grad).all() and torch.isfinite(loss_fn.weight.grad).all()
    assert loss_fn.logits(embeddings).abs().max() > 0.2 / temperature


def test_temperature_can_be_changed_after_construction():
    loss_fn, embeddings, labels = make_problem(torch.float64, temperature=0.05)
    loss_fn.temperature = 0.3
    assert loss_fn.temperature == 0.3 and loss_fn.logit_scale == pytest.approx(1 / 0.3)
    expected = brute_norm_softmax(embeddings, loss_fn.weight, labels, 0.3)
    torch.testing.assert_close(loss_fn(embeddings, labels), expected)


def test_lower_temperature_lowers_the_loss_of_well_classified_samples():
    # Sample at 30 degrees from w_0, 60 from w_1: loss log(1 + e^((cos 60 - cos 30) / T)) shrinks with T.
    loss_fn = NormSoftmaxLoss(2, 2).double()
    set_weights(loss_fn, [[1.0, 0.0], [0.0, 1.0]])
    embeddings = torch.tensor([[math.sqrt(3) / 2, 0.5]], dtype=torch.float64)
    losses = []
    for temperature in (1.0, 0.5, 0.1, 0.05):
        loss_fn.temperature = temperature
        losses.append(loss_fn(embeddings, torch.tensor([0])).item())
    assert losses == sorted(losses, reverse=True)
    assert losses[0] == pytest.approx(math.log1p(math.exp(0.5 - math.sqrt(3) / 2)))


def test_batch_permutation_invariance():
    loss_fn, embeddings, labels = make_problem(torch.float64, n=12)
    permutation = torch.randperm(12, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(loss_fn(embeddings[permutation], labels[permutation]), loss_fn(embeddings, labels))


def test_class_weights_and_proxies_are_normalised_and_detached():
    loss_fn = NormSoftmaxLoss(5, 3)
    assert [name for name, _ in loss_fn.named_parameters()] == ["weight"]
    torch.testing.assert_close(loss_fn.class_weights.norm(dim=1), torch.ones(5))
    assert not loss_fn.class_weights.requires_grad
    torch.testing.assert_close(loss_fn.proxies, loss_fn.class_weights)


def test_empty_batch_gives_attached_zero_and_can_warn():
    embeddings = torch.zeros(0, 2, requires_grad=True)
    assert_attached_zero_and_warning(
        NormSoftmaxLoss(3, 2, warn_if_empty=True), embeddings, torch.zeros(0, dtype=torch.long)
    )


@pytest.mark.parametrize("bad", [0.0, -0.05, float("nan"), float("inf")])
def test_bad_temperature_raises_at_construction_and_assignment(bad):
    with pytest.raises(ValueError, match="temperature"):
        NormSoftmaxLoss(3, 2, temperature=bad)
    loss_fn = NormSoftmaxLoss(3, 2)
    with pytest.raises(ValueError, match="temperature"):
        loss_fn.temperature = bad
    assert loss_fn.temperature == 0.05


def test_bad_input_raises():
    loss_fn = NormSoftmaxLoss(3, 2)
    with pytest.raises(ValueError, match="0..2"):
        loss_fn(torch.randn(2, 2), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match=r"\(batch, 2\)"):
        loss_fn(torch.randn(2, 5), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="num_classes"):
        NormSoftmaxLoss(1, 2)


# Agreement with pytorch-metric-learning ---------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("temperature", [0.05, 0.5])
def test_agrees_with_pytorch_metric_learning(dtype, temperature):
    # PML's NormalizedSoftmaxLoss stores W as (embedding_size, num_classes), normalises its
    # columns and the embeddings, and divides the dot products by the temperature.
    from pytorch_metric_learning.losses import NormalizedSoftmaxLoss

    loss_fn, embeddings, labels = make_problem(dtype, n=10, dim=4, num_classes=5, temperature=temperature)
    pml = NormalizedSoftmaxLoss(num_classes=5, embedding_size=4, temperature=temperature).to(dtype)
    with torch.no_grad():
        pml.W.copy_(loss_fn.weight.T)
    pml_embeddings = embeddings.detach().clone().requires_grad_()

    ours, theirs = loss_fn(embeddings, labels), pml(pml_embeddings, labels)
    torch.testing.assert_close(ours, theirs, **TOL[dtype])
    ours.backward()
    theirs.backward()
    torch.testing.assert_close(embeddings.grad, pml_embeddings.grad, **TOL[dtype])
    torch.testing.assert_close(loss_fn.weight.grad, pml.W.grad.T, **TOL[dtype])
