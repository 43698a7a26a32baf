"""Tests of dmlnotes.losses.large_margin: L-softmax (Liu et al. 2016) and SphereFace (Liu et al. 2017)."""

import math

import pytest
import torch

from dmlnotes.losses import LargeMarginSoftmaxLoss, SphereFaceLoss, annealed_lambda, psi
from loss_testing import DTYPES, assert_same_value_and_weight_grads, make_weighted_problem, set_weights
from loss_testing import SOFTMAX_TOLERANCES as TOL

LOSS_CLASSES = [LargeMarginSoftmaxLoss, SphereFaceLoss]


def psi_by_definition(theta, m):
    """``(-1)^k cos(m theta) - 2k`` on the piece ``[k pi / m, (k+1) pi / m]`` holding ``theta`` (a float)."""
    k = min(int(theta * m / math.pi), m - 1)
    return (-1) ** k * math.cos(m * theta) - 2 * k


def brute_large_margin(embeddings, weights, labels, margin, lambda_, normalize_weights):
    """Sample by sample, class by class: the angle by acos, cos(m theta) by torch.cos."""
    total = 0.0
    for i in range(embeddings.shape[0]):
        x, y = embeddings[i], int(labels[i])
        logits = []
        for c in range(weights.shape[0]):
            w = weights[c] / weights[c].norm() if normalize_weights else weights[c]
            if c != y:
                logits.append(w @ x)
                continue
            theta = torch.acos((w @ x) / (w.norm() * x.norm()))
            k = min(int(float(theta.detach()) * margin / math.pi), margin - 1)
            psi_value = (-1) ** k * torch.cos(margin * theta) - 2 * k
            logits.append(w.norm() * x.norm() * (lambda_ * torch.cos(theta) + psi_value) / (1 + lambda_))
        total = total - torch.log(torch.exp(logits[y]) / sum(torch.exp(v) for v in logits))
    return total / embeddings.shape[0]


# psi ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("m", [1, 2, 3, 4, 5])
def test_psi_matches_its_definition_piece_by_piece(m):
    thetas = torch.linspace(0, math.pi, 1001, dtype=torch.float64)
    expected = torch.tensor([psi_by_definition(float(t), m) for t in thetas], dtype=torch.float64)
    torch.testing.assert_close(psi(torch.cos(thetas), m), expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_psi_is_continuous_and_decreasing_from_1_to_1_minus_2m(m):
    thetas = torch.linspace(0, math.pi, 20001, dtype=torch.float64)
    values = psi(torch.cos(thetas), m)
    steps = values.diff()
    assert (steps < 0).all()  # strictly decreasing on [0, pi]
    assert steps.abs().max() < m * math.pi / 20000 * 1.01  # no jump: |psi'| <= m
    assert values[0].item() == pytest.approx(1.0) and values[-1].item() == pytest.approx(1 - 2 * m)
    # Continuity at each boundary theta = k pi / m: both sides meet at -1 - 2(k - 1) = 1 - 2k.
    for k in range(1, m):
        boundary = k * math.pi / m
        sides = psi(torch.cos(torch.tensor([boundary - 1e-9, boundary + 1e-9], dtype=torch.float64)), m)
        torch.testing.assert_close(sides, torch.full((2,), 1.0 - 2 * k, dtype=torch.float64), rtol=0, atol=1e-7)


def test_psi_is_cos_for_m_1():
    cosines = torch.linspace(-1, 1, 101, dtype=torch.float64)
    torch.testing.assert_close(psi(cosines, 1), cosines)


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
@pytest.mark.parametrize("m", [2, 3, 4])
def test_psi_gradient_is_finite_at_cos_plus_minus_one(m, dtype):
    # d psi / d cos = (-1)^k m U_{m-1}(cos): m^2 at cos = 1, and m^2 at cos = -1 as well.
    cosines = torch.tensor([1.0, -1.0], dtype=dtype, requires_grad=True)
    values = psi(cosines, m)
    values.sum().backward()
    assert values.tolist() == [1.0, 1.0 - 2 * m]
    torch.testing.assert_close(cosines.grad, torch.full((2,), float(m * m), dtype=dtype))


# The losses against the brute-force loop --------------------------------------------------------
def make_problem(loss_class, dtype, n=10, dim=3, num_classes=4, **loss_kwargs):
    return make_weighted_problem(loss_class, dtype, n, dim, num_classes, seed=0, **loss_kwargs)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("margin, lambda_", [(1, 0.0), (2, 0.0), (3, 1.5), (4, 0.0), (4, 5.0)])
@pytest.mark.parametrize("loss_class", LOSS_CLASSES)
def test_matches_brute_force_values_and_gradients(loss_class, margin, lambda_, dtype):
    loss_fn, embeddings, labels = make_problem(loss_class, dtype, margin=margin, lambda_=lambda_)
    normalize = loss_class is SphereFaceLoss
    assert_same_value_and_weight_grads(
        loss_fn,
        embeddings,
        labels,
        lambda e, w: brute_large_margin(e, w, labels, margin, lambda_, normalize),
        TOL[dtype],
    )
    assert loss_fn.last_stats.num_terms == len(labels)


def test_margin_1_with_any_lambda_is_the_bias_free_softmax():
    loss_fn, embeddings, labels = make_problem(LargeMarginSoftmaxLoss, torch.float64, margin=1, lambda_=3.0)
    expected = torch.nn.functional.cross_entropy(embeddings @ loss_fn.weight.T, labels)
    torch.testing.assert_close(loss_fn(embeddings, labels), expected)


# By hand ------------------------------------------------------------------------------------------
def hand_batch():
    # W_0 = (2, 0), W_1 = (0, 1); samples (1, 1) and (-1, 1), both of class 0; m = 2, lambda = 0.
    embeddings = torch.tensor([[1.0, 1.0], [-1.0, 1.0]], dtype=torch.float64)
    return embeddings, torch.tensor([0, 0])


def test_l_softmax_by_hand():
    # Sample (1, 1): theta_0 = 45 deg, k = 0, psi = cos 90 deg = 0: target logit 0, other W_1.x = 1;
    #   loss log(1 + e) = 1.3132616875.
    # Sample (-1, 1): theta_0 = 135 deg, k = 1, psi = -cos 270 deg - 2 = -2; ||W_0|| ||x|| = 2 sqrt 2:
    #   target -4 sqrt 2, other 1; loss 1 + 4 sqrt 2 + log(1 + e^(-1 - 4 sqrt 2)) = 6.6581386072.
    # Mean: 3.9857001474.
    loss_fn = LargeMarginSoftmaxLoss(2, 2, margin=2).double()
    set_weights(loss_fn, [[2.0, 0.0], [0.0, 1.0]])
    embeddings, labels = hand_batch()
    torch.testing.assert_close(loss_fn(embeddings, labels), torch.tensor(3.9857001473764044, dtype=torch.float64))
    r2 = math.sqrt(2)
    expected_logits = torch.tensor([[0.0, 1.0], [-4 * r2, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(loss_fn.logits(embeddings, labels), expected_logits)
    # Without labels: the plain logits W_j . x.
    torch.testing.assert_close(loss_fn.logits(embeddings), torch.tensor([[2.0, 1.0], [-2.0, 1.0]]).double())


def test_sphereface_by_hand():
    # W_0 is normalised to (1, 0). Sample (1, 1): target sqrt 2 * 0 = 0, other 1: log(1 + e) = 1.3132616875.
    # Sample (-1, 1): target sqrt 2 * (-2) = -2 sqrt 2, other 1: 1 + 2 sqrt 2 + log(1 + e^(-1 - 2 sqrt 2))
    #   = 3.8499378894. Mean: 2.5815997885.
    loss_fn = SphereFaceLoss(2, 2, margin=2, lambda_=0.0).double()
    set_weights(loss_fn, [[2.0, 0.0], [0.0, 1.0]])
    embeddings, labels = hand_batch()
    torch.testing.assert_close(loss_fn(embeddings, labels), torch.tensor(2.58159978846835, dtype=torch.float64))


def test_lambda_blends_towards_the_plain_softmax():
    # lambda = 1 for the sample (-1, 1) of the L-softmax hand case: target 2 sqrt 2 (cos + psi) / 2
    # = sqrt 2 (-1/sqrt 2 - 2) = -1 - 2 sqrt 2.
    loss_fn = LargeMarginSoftmaxLoss(2, 2, margin=2, lambda_=1.0).double()
    set_weights(loss_fn, [[2.0, 0.0], [0.0, 1.0]])
    embeddings, labels = hand_batch()
    assert loss_fn.logits(embeddings, labels)[1, 0].item() == pytest.approx(-1 - 2 * math.sqrt(2))
    # A huge lambda gives the bias-free softmax back.
    loss_fn.lambda_ = 1e12
    plain = torch.nn.functional.cross_entropy(embeddings @ loss_fn.weight.T, labels)
    torch.testing.assert_close(loss_fn(embeddings, labels), plain)


def test_larger_margin_means_larger_loss():
    loss_fn, embeddings, labels = make_problem(SphereFaceLoss, torch.float64, lambda_=0.0)
    losses = []
    for margin in (1, 2, 3, 4):
        loss_fn.margin = margin
        losses.append(loss_fn(embeddings, labels).item())
    assert losses == sorted(losses) and losses[0] < losses[-1]


def test_annealed_lambda_follows_the_caffe_schedule():
    assert annealed_lambda(0) == 1000.0
    assert annealed_lambda(100) == pytest.approx(1000.0 / 13.0)
    assert annealed_lambda(10**6) == 5.0
    assert annealed_lambda(10, base=10.0, gamma=1.0, power=2.0, minimum=0.0) == pytest.approx(10.0 / 121.0)


# Stability ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
@pytest.mark.parametrize("scale", [1.0, 1e3])
@pytest.mark.parametrize("loss_class", LOSS_CLASSES)
def test_finite_on_and_opposite_the_class_weight_and_at_large_norms(loss_class, scale, dtype):
    # Samples exactly on W_0 (theta = 0), exactly opposite (theta = pi) and orthogonal to it.
    loss_fn = loss_class(2, 2, lambda_=0.0)
    set_weights(loss_fn, [[1.0, 0.0], [0.0, 1.0]], dtype=torch.float32)
    embeddings = (scale * torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])).to(dtype).requires_grad_()
    loss = loss_fn(embeddings, torch.tensor([0, 0, 0]))
    loss.backward()
    assert loss.dtype == dtype and torch.isfinite(loss) and loss.item() > 0
    assert torch.isfinite(embeddings.grad).all() and torch.isfinite(loss_fn.weight.grad).all()
    # theta = pi: target logit ||x|| psi(pi) = -7 ||x||, other 0; the loss is about 7 ||x|| / 3 per sample.
    assert loss.item() > 7 * scale / 3 * 0.99


def test_zero_embedding_gives_finite_gradients():
    loss_fn = SphereFaceLoss(3, 2)
    embeddings = torch.zeros(2, 2, requires_grad=True)
    loss = loss_fn(embeddings, torch.tensor([0, 1]))
    loss.backward()
    assert loss.item() == pytest.approx(math.log(3)) and torch.isfinite(embeddings.grad).all()


# Parameters -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("loss_class", LOSS_CLASSES)
def test_bad_parameters_raise(loss_class):
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="margin"):
            loss_class(3, 2, margin=bad)
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="lambda_"):
            loss_class(3, 2, lambda_=bad)
    loss_fn = loss_class(3, 2)
    with pytest.raises(ValueError, match="lambda_"):
        loss_fn.lambda_ = -0.5
    with pytest.raises(ValueError, match="0..2"):
        loss_fn(torch.randn(2, 2), torch.tensor([0, 3]))


def test_defaults():
    assert (LargeMarginSoftmaxLoss(3, 2).margin, LargeMarginSoftmaxLoss(3, 2).lambda_) == (4, 0.0)
    assert (SphereFaceLoss(3, 2).margin, SphereFaceLoss(3, 2).lambda_) == (4, 5.0)


# Agreement with pytorch-metric-learning ------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("margin", [2, 3, 4])
@pytest.mark.parametrize("loss_class", LOSS_CLASSES)
def test_agrees_with_pytorch_metric_learning(loss_class, margin, dtype):
    # PML has no lambda (ours with lambda = 0), stores W as (embedding_size, num_classes) and
    # multiplies the logits by scale (1 here). Its SphereFaceLoss drops the weight norms.
    from pytorch_metric_learning import losses as pml

    loss_fn, embeddings, labels = make_problem(loss_class, dtype, n=12, dim=5, num_classes=4, margin=margin, lambda_=0)
    theirs_fn = getattr(pml, loss_class.__name__)(num_classes=4, embedding_size=5, margin=margin, scale=1).to(dtype)
    with torch.no_grad():
        theirs_fn.W.copy_(loss_fn.weight.T)
    their_embeddings = embeddings.detach().clone().requires_grad_()
    ours, theirs = loss_fn(embeddings, labels), theirs_fn(their_embeddings, labels)
    torch.testing.assert_close(ours, theirs, **TOL[dtype])
    ours.backward()
    theirs.backward()
    torch.testing.assert_close(embeddings.grad, their_embeddings.grad, **TOL[dtype])
    torch.testing.assert_close(loss_fn.weight.grad, theirs_fn.W.grad.T, **TOL[dtype])
