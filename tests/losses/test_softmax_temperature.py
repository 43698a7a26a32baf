"""Tests of dmlnotes.losses.softmax_temperature: eq. (18) and the gradients of eqs. (22)-(23)."""

import math

import pytest
import torch
import torch.nn.functional as F

from dmlnotes.checks import check_class_labels, check_positive
from dmlnotes.losses.heated_up_softmax import HeatedUpSoftmaxLoss
from dmlnotes.losses.softmax_temperature import (
    embedding_gradient,
    feature_gradient,
    logit_gradient,
    soft_target_cross_entropy,
    softened_softmax,
)
from loss_testing import DTYPES
from loss_testing import SOFTMAX_TOLERANCES as TOL


# Brute-force references: plain Python over samples and classes ------------------------
def brute_softened_softmax(logits, temperature):
    rows = []
    for row in logits.tolist():
        exps = [math.exp(z / temperature) for z in row]
        total = sum(exps)
        rows.append([e / total for e in exps])
    return torch.tensor(rows, dtype=torch.float64)


def brute_soft_cross_entropy(logits, targets, temperature):
    """Mean over samples of -sum_i p_i log(exp(z_i/T) / sum_j exp(z_j/T)); differentiable."""
    total = 0.0
    for i in range(logits.shape[0]):
        denominator = sum(torch.exp(logits[i, j] / temperature) for j in range(logits.shape[1]))
        for k in range(logits.shape[1]):
            total = total - targets[i, k] * torch.log(torch.exp(logits[i, k] / temperature) / denominator)
    return total / logits.shape[0]


def brute_feature_gradient(features, weights, labels, alpha):
    """alpha * sum_m (q_m - p_m) w_m, sample by sample, class by class."""
    rows = []
    for f, label in zip(features.tolist(), labels.tolist()):
        logits = [sum(a * b for a, b in zip(w, f)) for w in weights.tolist()]
        exps = [math.exp(alpha * z) for z in logits]
        probs = [e / sum(exps) for e in exps]
        gradient = [0.0] * len(f)
        for m, w in enumerate(weights.tolist()):
            coefficient = alpha * (probs[m] - (1.0 if m == label else 0.0))
            gradient = [g + coefficient * wk for g, wk in zip(gradient, w)]
        rows.append(gradient)
    return torch.tensor(rows, dtype=torch.float64)


def random_problem(dtype, n=7, dim=4, num_classes=5, seed=0):
    generator = torch.Generator().manual_seed(seed)
    features = F.normalize(torch.randn(n, dim, generator=generator, dtype=torch.float64), dim=1).to(dtype)
    weights = F.normalize(torch.randn(num_classes, dim, generator=generator, dtype=torch.float64), dim=1).to(dtype)
    labels = torch.randint(0, num_classes, (n,), generator=generator)
    return features, weights, labels


# Eq. (18) -------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("temperature", [0.5, 1.0, 4.0])
def test_softened_softmax_matches_brute_force(dtype, temperature):
    logits = torch.randn(5, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 3
    expected = brute_softened_softmax(logits, temperature)
    got = softened_softmax(logits.to(dtype), temperature)
    assert got.dtype == dtype
    torch.testing.assert_close(got.double(), expected, **TOL[dtype])


def test_softened_softmax_by_hand():
    # logits (0, ln 3): T = 1 gives (1, 3) / 4. T = 2 gives exp(ln 3 / 2) = sqrt(3), so
    # (1, sqrt 3) / (1 + sqrt 3) = (0.3660254, 0.6339746): a higher temperature flattens.
    logits = torch.tensor([[0.0, math.log(3.0)]], dtype=torch.float64)
    torch.testing.assert_close(softened_softmax(logits, 1.0), torch.tensor([[0.25, 0.75]], dtype=torch.float64))
    torch.testing.assert_close(
        softened_softmax(logits, 2.0), torch.tensor([[0.3660254037844386, 0.6339745962155614]], dtype=torch.float64)
    )


def test_softened_softmax_limits_are_uniform_and_one_hot_and_finite():
    logits = torch.tensor([[3.0, -50.0, 100.0, 99.0]], dtype=torch.float32)
    hot = softened_softmax(logits, 1e-3)
    flat = softened_softmax(logits, 1e6)
    assert torch.isfinite(hot).all() and torch.isfinite(flat).all()
    torch.testing.assert_close(hot, torch.tensor([[0.0, 0.0, 1.0, 0.0]]))
    torch.testing.assert_close(flat, torch.full((1, 4), 0.25), rtol=0, atol=1e-4)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_soft_target_cross_entropy_matches_brute_force_values_and_gradients(dtype, temperature):
    generator = torch.Generator().manual_seed(2)
    logits = (torch.randn(4, 3, generator=generator, dtype=torch.float64) * 2).to(dtype).requires_grad_()
    targets = torch.softmax(torch.randn(4, 3, generator=generator, dtype=torch.float64), dim=1).to(dtype)
    reference_logits = logits.detach().clone().requires_grad_()

    got = soft_target_cross_entropy(logits, targets, temperature)
    expected = brute_soft_cross_entropy(reference_logits, targets, temperature)
    torch.testing.assert_close(got, expected, **TOL[dtype])
    got.backward()
    expected.backward()
    torch.testing.assert_close(logits.grad, reference_logits.grad, **TOL[dtype])


def test_soft_target_cross_entropy_gradient_is_q_minus_p_over_t():
    # d/dz_i of -sum_k p_k log softmax(z/T)_k is (q_i - p_i) / T for targets summing to 1.
    generator = torch.Generator().manual_seed(3)
    logits = torch.randn(3, 4, generator=generator, dtype=torch.float64, requires_grad=True)
    targets = torch.softmax(torch.randn(3, 4, generator=generator, dtype=torch.float64), dim=1)
    temperature = 3.0
    soft_target_cross_entropy(logits, targets, temperature, reduction="sum").backward()
    q = brute_softened_softmax(logits.detach(), temperature)
    torch.testing.assert_close(logits.grad, (q - targets) / temperature)


def test_soft_target_cross_entropy_with_one_hot_targets_is_cross_entropy_and_reductions_agree():
    generator = torch.Generator().manual_seed(4)
    logits = torch.randn(6, 5, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, 5, (6,), generator=generator)
    one_hot = F.one_hot(labels, 5).double()
    per_sample = soft_target_cross_entropy(logits, one_hot, 0.25, reduction="none")
    torch.testing.assert_close(per_sample, F.cross_entropy(logits / 0.25, labels, reduction="none"))
    torch.testing.assert_close(soft_target_cross_entropy(logits, one_hot, 0.25), per_sample.mean())
    torch.testing.assert_close(soft_target_cross_entropy(logits, one_hot, 0.25, reduction="sum"), per_sample.sum())


def test_soft_target_cross_entropy_is_finite_at_low_temperature_in_float32():
    logits = torch.tensor([[1.0, -1.0, 0.5]], requires_grad=True)
    targets = torch.tensor([[0.0, 1.0, 0.0]])  # the worst class, at T = 0.001: loss = 2 / 0.001 = 2000
    loss = soft_target_cross_entropy(logits, targets, 0.001)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    torch.testing.assert_close(loss, torch.tensor(2000.0))


# Eqs. (22)-(23) ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("alpha", [1.0, 16.0])
def test_logit_gradient_matches_autograd(dtype, alpha):
    features, weights, labels = random_problem(dtype)
    logits = (features @ weights.T).requires_grad_()
    # Sum, not mean: eq. (22) is the gradient of one sample's loss.
    F.cross_entropy(alpha * logits, labels, reduction="sum").backward()
    torch.testing.assert_close(logit_gradient(logits.detach(), labels, alpha), logits.grad, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("alpha", [1.0, 4.0, 16.0])
def test_feature_gradient_matches_autograd_wrt_normalised_feature(dtype, alpha):
    features, weights, labels = random_problem(dtype)
    leaf = features.clone().requires_grad_()  # f itself is the leaf: the gradient of eq. (23)
    F.cross_entropy(alpha * leaf @ weights.T, labels, reduction="sum").backward()
    closed_form = feature_gradient(features, weights, labels, alpha)
    torch.testing.assert_close(closed_form, leaf.grad, **TOL[dtype])
    assert closed_form.dtype == dtype


def test_feature_gradient_matches_brute_force_loop():
    features, weights, labels = random_problem(torch.float64, seed=5)
    expected = brute_feature_gradient(features, weights, labels, 3.0)
    torch.testing.assert_close(feature_gradient(features, weights, labels, 3.0), expected)


def test_feature_gradient_by_hand_for_two_orthogonal_classes():
    # w_0 = (1, 0), w_1 = (0, 1), f = w_0 with label 0, alpha = 2: logits z = (1, 0),
    # q_0 = e^2 / (e^2 + 1), q_1 = 1 / (1 + e^2) = 0.1192029.
    # Eq. (23): 2 * ((q_0 - 1) w_0 + q_1 w_1) = 2 q_1 (-1, 1) = (-0.2384058, 0.2384058):
    # the gradient pushes f away from w_1; descent moves it towards w_0.
    weights = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    features = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    expected = torch.tensor([[-0.23840584404423515, 0.23840584404423515]], dtype=torch.float64)
    torch.testing.assert_close(feature_gradient(features, weights, torch.tensor([0]), 2.0), expected)


def test_large_alpha_starves_easy_samples_and_feeds_misclassified_ones():
    # The survey's reading of eq. (23): at alpha = 60 a sample lying on its own class weight
    # gets a gradient of norm alpha * sqrt(2) / (1 + e^alpha) (about 7e-25), a sample lying
    # on the other class weight gets almost alpha * sqrt(2) = 84.85.
    weights = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    norms = feature_gradient(features, weights, torch.tensor([0, 0]), 60.0).norm(dim=1)
    assert norms[0] < 1e-20
    torch.testing.assert_close(norms[1], torch.tensor(60.0 * math.sqrt(2.0), dtype=torch.float64))


@pytest.mark.parametrize("dtype", DTYPES)
def test_embedding_gradient_matches_autograd_of_heated_up_loss(dtype):
    torch.manual_seed(6)
    loss_fn = HeatedUpSoftmaxLoss(num_classes=5, embedding_dim=4, alpha=8.0).to(dtype)
    embeddings = (torch.randn(7, 4, dtype=dtype) * 3).requires_grad_()
    labels = torch.tensor([0, 1, 2, 3, 4, 0, 2])
    (loss_fn(embeddings, labels) * len(labels)).backward()  # undo the batch mean
    closed_form = embedding_gradient(embeddings.detach(), loss_fn.weight.detach(), labels, 8.0)
    torch.testing.assert_close(closed_form, embeddings.grad, **TOL[dtype])
    # Only the tangential part survives the normalisation.
    radial = (closed_form * F.normalize(embeddings.detach(), dim=1)).sum(dim=1)
    torch.testing.assert_close(radial, torch.zeros(7, dtype=dtype), **TOL[dtype])


def test_closed_form_gradients_are_finite_at_alpha_1000_in_float32():
    weights = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    embeddings = torch.tensor([[0.0, 2.0], [-1.0, 0.1]])  # both misclassified as class 1
    gradient = embedding_gradient(embeddings, weights, torch.tensor([0, 0]), 1000.0)
    assert torch.isfinite(gradient).all()
    assert torch.isfinite(feature_gradient(F.normalize(embeddings, dim=1), weights, torch.tensor([0, 0]), 1000.0)).all()


# Bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), "hot", None, True])
def test_bad_temperature_or_alpha_raises(bad):
    logits = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="temperature"):
        softened_softmax(logits, bad)
    with pytest.raises(ValueError, match="temperature"):
        soft_target_cross_entropy(logits, torch.full((2, 3), 1 / 3), bad)
    with pytest.raises(ValueError, match="alpha"):
        logit_gradient(logits, torch.tensor([0, 1]), bad)


def test_bad_shapes_and_labels_raise():
    with pytest.raises(ValueError, match="target_probs"):
        soft_target_cross_entropy(torch.zeros(2, 3), torch.zeros(2, 4), 1.0)
    with pytest.raises(ValueError, match="reduction"):
        soft_target_cross_entropy(torch.zeros(2, 3), torch.zeros(2, 3), 1.0, reduction="avg")
    with pytest.raises(ValueError, match="0..2"):
        logit_gradient(torch.zeros(2, 3), torch.tensor([0, 3]), 1.0)
    with pytest.raises(ValueError, match="batch size"):
        logit_gradient(torch.zeros(2, 3), torch.tensor([0, 1, 2]), 1.0)
    with pytest.raises(ValueError, match="dimension"):
        feature_gradient(torch.zeros(2, 3), torch.zeros(4, 2), torch.tensor([0, 1]), 1.0)
    with pytest.raises(ValueError, match="integer"):
        check_class_labels(torch.tensor([0.0, 1.0]), 3)
    with pytest.raises(ValueError, match="-1"):
        check_class_labels(torch.tensor([-1, 1]), 3)
    assert check_positive("scale", 2) == 2.0


def test_softmax_helpers_refuse_what_is_not_a_distribution_or_not_finite():
    from dmlnotes.losses import embedding_gradient, soft_target_cross_entropy, softened_softmax

    logits = torch.randn(3, 4)
    bad = logits.clone()
    bad[2, 1] = float("nan")
    with pytest.raises(ValueError, match=r"logits contain NaN or inf in 1 of 3 rows \(2\)"):
        softened_softmax(bad)
    targets = torch.softmax(torch.randn(3, 4), dim=1)
    negative = targets.clone()
    negative[0, 0] = -0.1
    with pytest.raises(ValueError, match="non-negative"):
        soft_target_cross_entropy(logits, negative)
    with pytest.raises(ValueError, match="row 1 sums to 2"):
        soft_target_cross_entropy(logits, targets * torch.tensor([[1.0], [2.0], [1.0]]))
    embeddings = torch.randn(3, 4)
    embeddings[1] = 0
    with pytest.raises(ValueError, match=r"non-zero.*rows \[1\]"):
        embedding_gradient(embeddings, torch.randn(5, 4), torch.tensor([0, 1, 2]), alpha=16.0)
