"""Tests of dmlnotes.losses.margin_softmax: L2-softmax, NormFace, CosFace, ArcFace."""

import math

import pytest
import torch

from dmlnotes.losses import ArcFaceLoss, CosFaceLoss, L2SoftmaxLoss, NormFaceLoss, NormSoftmaxLoss
from loss_testing import DTYPES, make_weighted_problem, set_weights
from loss_testing import SOFTMAX_TOLERANCES as TOL

# float32 losses against the float64 brute force (a float32 brute force, exp then log, is itself
# off by units in its gradients at s = 64); logits of +-64 lose about 64 * 1e-7 each.
TOL32 = {torch.float64: TOL[torch.float64], torch.float32: dict(rtol=2e-4, atol=1e-4)}


def assert_matches_brute_force(loss_fn, embeddings, labels, reference, tol, extra=()):
    """Value and gradients (embeddings, weight, ``extra`` parameters) against ``reference`` in float64.

    ``reference(embeddings, weights, *extra)`` gets float64 leaf copies."""
    reference_inputs = [t.detach().double().requires_grad_() for t in (embeddings, loss_fn.weight, *extra)]
    got = loss_fn(embeddings, labels)
    expected = reference(*reference_inputs)
    torch.testing.assert_close(got.double(), expected, **tol)
    got.backward()
    expected.backward()
    for ours, theirs in zip((embeddings, loss_fn.weight, *extra), reference_inputs):
        torch.testing.assert_close(ours.grad.double(), theirs.grad, **tol)


# Brute force: sample by sample, class by class, explicit cos / acos / exp / log -------------
def cosine(a, b):
    return (a @ b) / (a.norm() * b.norm())


def brute_margin_softmax(embeddings, weights, labels, target_logit, other_logit):
    """Mean of -log(exp(target) / (exp(target) + sum of exp(others))), one sample at a time."""
    total = 0.0
    for i in range(embeddings.shape[0]):
        y = int(labels[i])
        exps = []
        for c in range(weights.shape[0]):
            logit = target_logit(embeddings[i], weights[c], c) if c == y else other_logit(embeddings[i], weights[c], c)
            exps.append(torch.exp(logit))
        total = total - torch.log(exps[y] / sum(exps))
    return total / embeddings.shape[0]


def brute_normface(embeddings, weights, labels, s):
    def plain(x, w, c):
        return s * cosine(x, w)

    return brute_margin_softmax(embeddings, weights, labels, plain, plain)


def brute_cosface(embeddings, weights, labels, s, m):
    return brute_margin_softmax(
        embeddings, weights, labels, lambda x, w, c: s * (cosine(x, w) - m), lambda x, w, c: s * cosine(x, w)
    )


def brute_arcface(embeddings, weights, labels, s, m, easy_margin=False):
    def target(x, w, c):
        cos = cosine(x, w)
        theta = torch.acos(cos)
        if easy_margin:
            return s * (torch.cos(theta + m) if cos > 0 else cos)
        if theta + m <= math.pi:
            return s * torch.cos(theta + m)
        return s * (cos - m * math.sin(m))  # insightface's fallback past pi - m

    return brute_margin_softmax(embeddings, weights, labels, target, lambda x, w, c: s * cosine(x, w))


def brute_l2_softmax(embeddings, weights, bias, labels, alpha):
    def logit(x, w, c):
        return alpha * (x @ w) / x.norm() + (0.0 if bias is None else bias[c])

    return brute_margin_softmax(embeddings, weights, labels, logit, logit)


def make_problem(loss_class, dtype, n=10, dim=3, num_classes=4, seed=0, **kwargs):
    return make_weighted_problem(loss_class, dtype, n, dim, num_classes, seed, **kwargs)


# Values and gradients against the brute force -------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale", [1.0, 16.0, 64.0])
def test_normface_matches_brute_force(dtype, scale):
    loss_fn, embeddings, labels = make_problem(NormFaceLoss, dtype, scale=scale)
    assert_matches_brute_force(
        loss_fn, embeddings, labels, lambda e, w: brute_normface(e, w, labels, scale), TOL32[dtype]
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("scale", "margin"), [(64.0, 0.35), (30.0, 0.1), (4.0, 0.0), (10.0, 1.5)])
def test_cosface_matches_brute_force(dtype, scale, margin):
    loss_fn, embeddings, labels = make_problem(CosFaceLoss, dtype, scale=scale, margin=margin)
    assert_matches_brute_force(
        loss_fn, embeddings, labels, lambda e, w: brute_cosface(e, w, labels, scale, margin), TOL32[dtype]
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("easy_margin", [False, True])
@pytest.mark.parametrize(("scale", "margin"), [(64.0, 0.5), (30.0, 0.1), (4.0, 1.2)])
def test_arcface_matches_brute_force(dtype, scale, margin, easy_margin):
    # 2-D with 40 samples: some targets lie past pi - m (fallback) and some at cos < 0.
    loss_fn, embeddings, labels = make_problem(
        ArcFaceLoss, dtype, n=40, dim=2, scale=scale, margin=margin, easy_margin=easy_margin
    )
    target_cos = loss_fn.cosines(embeddings).gather(1, labels[:, None])
    assert (target_cos < math.cos(math.pi - margin)).any() and (target_cos > 0).any()
    assert_matches_brute_force(
        loss_fn,
        embeddings,
        labels,
        lambda e, w: brute_arcface(e, w, labels, scale, margin, easy_margin),
        TOL32[dtype],
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("alpha", [1.0, 16.0, 50.0])
def test_l2_softmax_matches_brute_force(dtype, bias, alpha):
    loss_fn, embeddings, labels = make_problem(L2SoftmaxLoss, dtype, alpha=alpha, bias=bias)
    if bias:
        with torch.no_grad():
            loss_fn.bias.copy_(torch.tensor([0.3, -0.2, 0.0, 0.5], dtype=dtype))
    assert_matches_brute_force(
        loss_fn,
        embeddings,
        labels,
        lambda e, w, *b: brute_l2_softmax(e, w, b[0] if b else None, labels, alpha),
        TOL32[dtype],
        extra=(loss_fn.bias,) if bias else (),
    )


# Hand cases: two classes on the unit circle, w_0 = (1, 0), w_1 = (0, 1) ----------------------
def circle_loss(loss_fn, angle, label=0):
    set_weights(loss_fn, [[1.0, 0.0], [0.0, 2.0]])  # the norm of w_1 must not matter
    embeddings = torch.tensor([[3 * math.cos(angle), 3 * math.sin(angle)]], dtype=torch.float64)
    return loss_fn(embeddings, torch.tensor([label])).item()


def test_cosface_by_hand():
    # 30 degrees from w_0, 60 from w_1; s = 4, m = 0.35: logits 4 (0.8660254 - 0.35) = 2.0641016
    # and 4 * 0.5 = 2, loss log(1 + e^(2 - 2.0641016)) = log(1 + e^-0.0641016) = 0.6612...
    loss_fn = CosFaceLoss(2, 2, scale=4.0, margin=0.35).double()
    assert circle_loss(loss_fn, math.pi / 6) == pytest.approx(math.log1p(math.exp(-0.0641016151)), abs=1e-9)
    # With m = 0 it is NormFace: log(1 + e^(4 (0.5 - 0.8660254))) = log(1 + e^-1.4641016).
    loss_fn.margin = 0.0
    assert circle_loss(loss_fn, math.pi / 6) == pytest.approx(math.log1p(math.exp(-1.4641016151)), abs=1e-9)


def test_arcface_by_hand():
    loss_fn = ArcFaceLoss(2, 2, scale=4.0, margin=0.5).double()
    # theta = 30 deg = 0.5235988; theta + m = 1.0235988, cos = 0.5202960; logits 2.0811841 and 2:
    # loss log(1 + e^-0.0811841).
    assert circle_loss(loss_fn, math.pi / 6) == pytest.approx(math.log1p(math.exp(-0.0811841)), abs=1e-6)
    # Opposite w_0 (theta = pi > pi - m): fallback -1 - 0.5 sin 0.5 = -1.2397128; other cosine 0:
    # loss log(1 + e^(4 * 1.2397128)) = log(1 + e^4.9588511).
    assert circle_loss(loss_fn, math.pi) == pytest.approx(math.log1p(math.exp(4.9588511)), abs=1e-6)
    # Easy margin: at 120 deg from w_0 (cos -0.5 < 0) no margin: logits -2 and 4 cos 30deg = 3.4641016.
    loss_fn.easy_margin = True
    assert circle_loss(loss_fn, 2 * math.pi / 3) == pytest.approx(math.log1p(math.exp(5.4641016)), abs=1e-6)


def test_l2_softmax_by_hand():
    # Unnormalised weights (1, 0) and (0, 2), alpha = 2, bias (0, 1): the sample (3, 0) becomes
    # (2, 0), logits 2 and 0 + 1, loss log(1 + e^(1 - 2)) = log(1 + e^-1) = 0.3132617.
    loss_fn = L2SoftmaxLoss(2, 2, alpha=2.0).double()
    with torch.no_grad():
        loss_fn.bias.copy_(torch.tensor([0.0, 1.0]))
    assert circle_loss(loss_fn, 0.0) == pytest.approx(0.31326168751822286, abs=1e-12)
    assert L2SoftmaxLoss.alpha_lower_bound(10, 0.9) == pytest.approx(math.log(0.9 * 8 / 0.1))


def test_margins_raise_the_loss_at_the_same_angle():
    losses = [
        circle_loss(NormFaceLoss(2, 2, scale=16.0).double(), 0.3),
        circle_loss(CosFaceLoss(2, 2, scale=16.0, margin=0.2).double(), 0.3),
        circle_loss(CosFaceLoss(2, 2, scale=16.0, margin=0.35).double(), 0.3),
    ]
    assert losses == sorted(losses) and losses[0] < losses[1]


@pytest.mark.parametrize("scale", [1.0, 5.0, 16.0])
def test_normface_reaches_its_lower_bound_on_a_simplex(scale):
    # Three weights 120 degrees apart, each sample on its weight: cosines 1, -1/2, -1/2, so the
    # loss is log(1 + 2 e^(-3 s / 2)) = log(1 + (C - 1) e^(-C s / (C - 1))) with C = 3.
    loss_fn = NormFaceLoss(3, 2, scale=scale).double()
    rows = [[math.cos(2 * math.pi * k / 3), math.sin(2 * math.pi * k / 3)] for k in range(3)]
    set_weights(loss_fn, rows)
    loss = loss_fn(torch.tensor(rows, dtype=torch.float64) * 2.0, torch.arange(3)).item()
    assert loss == pytest.approx(math.log1p(2 * math.exp(-1.5 * scale)), rel=1e-12)


# NormFace is NormSoftmaxLoss with s = 1 / T -----------------------------------------------------
def test_normface_is_norm_softmax_with_scale_one_over_temperature():
    loss_fn, embeddings, labels = make_problem(NormFaceLoss, torch.float64, scale=20.0)
    torch.manual_seed(0)
    reference = NormSoftmaxLoss(4, 3, temperature=0.05).double()
    set_weights(reference, loss_fn.weight.tolist())
    torch.testing.assert_close(loss_fn(embeddings, labels), reference(embeddings, labels))
    assert isinstance(loss_fn, NormSoftmaxLoss) and loss_fn.temperature == pytest.approx(0.05)
    loss_fn.temperature = 0.1
    assert loss_fn.scale == pytest.approx(10.0) and loss_fn.logit_scale == loss_fn.scale
    loss_fn.scale = 30.0
    assert loss_fn.scale == 30.0 and loss_fn.temperature == pytest.approx(1 / 30)


# NormFace's learnable scale ---------------------------------------------------------------------
def test_learned_scale_gets_the_gradient_of_the_scaled_cosines():
    # d loss / d s = mean over samples of (sum_c p_c cos_c - cos_y), by the chain rule through s cos.
    loss_fn, embeddings, labels = make_problem(NormFaceLoss, torch.float64, scale=5.0, learn_scale=True)
    loss_fn(embeddings, labels).backward()
    cosines = loss_fn.cosines(embeddings).detach()
    probabilities = torch.softmax(5.0 * cosines, dim=1)
    expected = ((probabilities * cosines).sum(1) - cosines[torch.arange(len(labels)), labels]).mean()
    torch.testing.assert_close(loss_fn.learned_factor.grad, expected)


def test_learned_scale_is_a_parameter_that_the_properties_follow():
    loss_fn = NormFaceLoss(4, 3, scale=8.0, learn_scale=True)
    assert any(p is loss_fn.learned_factor for p in loss_fn.parameter_group(0.1)["params"])
    assert "learned_factor" in loss_fn.state_dict() and "learn_scale=True" in repr(loss_fn)
    with torch.no_grad():
        loss_fn.learned_factor.fill_(12.0)  # what an optimiser step does
    assert loss_fn.scale == 12.0 and loss_fn.temperature == pytest.approx(1 / 12)
    loss_fn.temperature = 0.25
    assert loss_fn.learned_factor.item() == 4.0 and loss_fn.scale == 4.0
    fixed = NormFaceLoss(4, 3, scale=8.0)
    assert fixed.learned_factor is None and len(list(fixed.parameters())) == 1


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64], ids=str)
def test_learned_scale_gives_the_fixed_scales_loss_in_every_dtype(dtype):
    learned, embeddings, labels = make_problem(NormFaceLoss, torch.float64, scale=16.0, learn_scale=True)
    fixed = NormFaceLoss(4, 3, scale=16.0).double()
    set_weights(fixed, learned.weight.tolist())
    expected = fixed(embeddings, labels)
    value = learned(embeddings.to(dtype), labels)
    assert value.dtype == dtype
    tol = dict(rtol=1e-2, atol=1e-2) if dtype == torch.float16 else TOL32[dtype]
    torch.testing.assert_close(value.double(), expected, **tol)


def test_a_learned_scale_grows_while_training_separable_data():
    # Every sample on its own class weight: the loss falls with s (NormFace's bound), so s grows.
    torch.manual_seed(0)
    loss_fn = NormFaceLoss(3, 2, scale=1.0, learn_scale=True).double()
    angles = torch.tensor([0.0, 2 * math.pi / 3, 4 * math.pi / 3], dtype=torch.float64)
    embeddings = torch.stack([angles.cos(), angles.sin()], dim=1)
    with torch.no_grad():
        loss_fn.weight.copy_(embeddings)
    optimizer = torch.optim.SGD([loss_fn.learned_factor], lr=1.0)
    for _ in range(20):
        optimizer.zero_grad()
        loss_fn(embeddings, torch.arange(3)).backward()
        optimizer.step()
    assert loss_fn.scale > 2.0


def test_logits_without_labels_have_no_margin():
    loss_fn, embeddings, labels = make_problem(CosFaceLoss, torch.float64)
    plain = loss_fn.logits(embeddings)
    torch.testing.assert_close(plain, loss_fn.cosines(embeddings) * 64.0)
    with_margin = loss_fn.logits(embeddings, labels)
    difference = plain - with_margin
    expected = torch.zeros_like(plain)
    expected[torch.arange(len(labels)), labels] = 64.0 * 0.35
    torch.testing.assert_close(difference, expected)


# Stability at theta = 0 and pi ------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("easy_margin", [False, True])
def test_arcface_on_and_opposite_its_class_weight_is_finite(dtype, easy_margin):
    # Sample 0 exactly on w_0 (theta = 0), sample 1 exactly opposite w_0 (theta = pi), both class 0.
    loss_fn = ArcFaceLoss(2, 2, easy_margin=easy_margin).to(dtype)
    set_weights(loss_fn, [[1.0, 0.0], [0.0, 1.0]], dtype=dtype)
    embeddings = torch.tensor([[1.0, 0.0], [-1.0, 0.0]], dtype=dtype, requires_grad=True)
    loss = loss_fn(embeddings, torch.tensor([0, 0]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(embeddings.grad).all() and torch.isfinite(loss_fn.weight.grad).all()
    # theta = 0: logits (64 cos 0.5, 0), loss log(1 + e^(-56.2)) ~ 0. theta = pi: target cosine
    # -1 - 0.5 sin 0.5 (easy margin: -1), other 0, loss = 64 * 1.2397 (64) plus e^-79 (e^-64).
    opposite = 64 * (1.0 if easy_margin else 1 + 0.5 * math.sin(0.5))
    rel = 1e-6 if dtype in (torch.float32, torch.float64) else 2e-2
    assert loss.item() == pytest.approx(opposite / 2, rel=rel)


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("loss_class", [ArcFaceLoss, CosFaceLoss, NormFaceLoss, L2SoftmaxLoss])
def test_features_exactly_on_random_class_weights_have_finite_gradients(dtype, loss_class):
    torch.manual_seed(1)
    loss_fn = loss_class(5, 16).to(dtype)
    labels = torch.tensor([0, 1, 2, 3, 4, 0])
    weight = loss_fn.weight.detach()
    embeddings = torch.cat([weight[labels[:5]] * 7.0, -weight[:1]]).requires_grad_()
    loss = loss_fn(embeddings, labels)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(embeddings.grad).all() and torch.isfinite(loss_fn.weight.grad).all()


# pytorch-metric-learning ------------------------------------------------------------------------
def compare_with_pml(loss_fn, pml, embeddings, labels, tol):
    with torch.no_grad():
        pml.W.copy_(loss_fn.weight.T)  # PML stores W as (embedding_size, num_classes)
    pml_embeddings = embeddings.detach().clone().requires_grad_()
    ours, theirs = loss_fn(embeddings, labels), pml(pml_embeddings, labels)
    torch.testing.assert_close(ours, theirs, **tol)
    ours.backward()
    theirs.backward()
    torch.testing.assert_close(embeddings.grad, pml_embeddings.grad, **tol)
    torch.testing.assert_close(loss_fn.weight.grad, pml.W.grad.T, **tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("scale", "margin"), [(64.0, 0.35), (30.0, 0.2)])
def test_cosface_agrees_with_pytorch_metric_learning(dtype, scale, margin):
    from pytorch_metric_learning.losses import CosFaceLoss as PMLCosFace

    loss_fn, embeddings, labels = make_problem(
        CosFaceLoss, dtype, n=12, dim=6, num_classes=5, scale=scale, margin=margin
    )
    pml = PMLCosFace(5, 6, margin=margin, scale=scale).to(dtype)
    compare_with_pml(loss_fn, pml, embeddings, labels, TOL32[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("scale", "margin"), [(64.0, 0.5), (30.0, 0.2)])
def test_arcface_agrees_with_pytorch_metric_learning(dtype, scale, margin):
    # PML's margin is in degrees; its acos path has the same fallback past pi - m.
    from pytorch_metric_learning.losses import ArcFaceLoss as PMLArcFace

    loss_fn, embeddings, labels = make_problem(
        ArcFaceLoss, dtype, n=40, dim=2, num_classes=5, scale=scale, margin=margin
    )
    assert (loss_fn.cosines(embeddings).gather(1, labels[:, None]) < math.cos(math.pi - margin)).any()
    pml = PMLArcFace(5, 2, margin=math.degrees(margin), scale=scale).to(dtype)
    compare_with_pml(loss_fn, pml, embeddings, labels, TOL32[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_normface_agrees_with_pytorch_metric_learning_normalized_softmax(dtype):
    from pytorch_metric_learning.losses import NormalizedSoftmaxLoss

    loss_fn, embeddings, labels = make_problem(NormFaceLoss, dtype, n=12, dim=6, num_classes=5, scale=16.0)
    pml = NormalizedSoftmaxLoss(5, 6, temperature=1 / 16).to(dtype)
    compare_with_pml(loss_fn, pml, embeddings, labels, TOL32[dtype])


# Parameters -------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_scales_raise(bad):
    for make in (lambda: NormFaceLoss(3, 2, scale=bad), lambda: CosFaceLoss(3, 2, scale=bad)):
        with pytest.raises(ValueError, match="scale"):
            make()
    with pytest.raises(ValueError, match="alpha"):
        L2SoftmaxLoss(3, 2, alpha=bad)


@pytest.mark.parametrize("bad", [-0.1, float("nan"), math.pi, 4.0])
def test_bad_arcface_margins_raise(bad):
    with pytest.raises(ValueError, match="margin"):
        ArcFaceLoss(3, 2, margin=bad)


def test_bad_cosface_margin_raises_and_parameters_are_listed():
    with pytest.raises(ValueError, match="margin"):
        CosFaceLoss(3, 2, margin=-0.1)
    assert [n for n, _ in L2SoftmaxLoss(3, 2).named_parameters()] == ["weight", "bias"]
    assert [n for n, _ in L2SoftmaxLoss(3, 2, bias=False).named_parameters()] == ["weight"]
    assert [n for n, _ in ArcFaceLoss(3, 2).named_parameters()] == ["weight"]
    assert "margin=0.5" in repr(ArcFaceLoss(3, 2)) and "scale=64.0" in repr(CosFaceLoss(3, 2))
