"""Tests of dmlnotes.losses.proxy_nca (survey eqs. (13)-(17))."""

import math
import warnings

import pytest
import torch
import torch.nn.functional as F

from dmlnotes.distances import SquaredEuclideanDistance
from dmlnotes.losses import NormSoftmaxLoss, ProxyNCALoss
from loss_testing import (
    DTYPES,
    assert_attached_zero_and_warning,
    assert_loss_and_finite_gradients,
    assert_same_value_and_weight_grads,
    make_weighted_problem,
)
from loss_testing import SOFTMAX_TOLERANCES as TOL
from loss_testing import set_weights as set_proxies


def brute_proxy_nca(embeddings, proxies, labels, include_positive, normalize, scale):
    """Eq. (13) / (14) sample by sample, proxy by proxy; differentiable in both inputs."""
    total = 0.0
    for i in range(embeddings.shape[0]):
        x = embeddings[i] / embeddings[i].norm() if normalize else embeddings[i]
        positive = None
        denominator = 0.0
        for c in range(proxies.shape[0]):
            p = proxies[c] / proxies[c].norm() if normalize else proxies[c]
            similarity = torch.exp(-scale * ((x - p) ** 2).sum())
            if c == int(labels[i]):
                positive = similarity
                if include_positive:
                    denominator = denominator + similarity
            else:
                denominator = denominator + similarity
        total = total - torch.log(positive / denominator)
    return total / embeddings.shape[0]


def make_problem(dtype, n=8, dim=3, num_classes=4, seed=0, spread=1.0, **loss_kwargs):
    return make_weighted_problem(ProxyNCALoss, dtype, n, dim, num_classes, seed, spread, **loss_kwargs)


CASES = [
    dict(
        include_positive_in_denominator=False, distance=SquaredEuclideanDistance(normalize_embeddings=True), scale=1.0
    ),
    dict(include_positive_in_denominator=True, distance=SquaredEuclideanDistance(normalize_embeddings=True), scale=1.0),
    dict(
        include_positive_in_denominator=False, distance=SquaredEuclideanDistance(normalize_embeddings=True), scale=3.0
    ),
    dict(include_positive_in_denominator=True, distance=SquaredEuclideanDistance(normalize_embeddings=True), scale=3.0),
    dict(
        include_positive_in_denominator=False, distance=SquaredEuclideanDistance(normalize_embeddings=False), scale=1.0
    ),
    dict(
        include_positive_in_denominator=True, distance=SquaredEuclideanDistance(normalize_embeddings=False), scale=0.5
    ),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("settings", CASES)
def test_matches_brute_force_values_and_gradients(dtype, settings):
    loss_fn, embeddings, labels = make_problem(dtype, spread=0.7, **settings)
    assert_same_value_and_weight_grads(
        loss_fn,
        embeddings,
        labels,
        lambda e, proxies: brute_proxy_nca(
            e,
            proxies,
            labels,
            settings["include_positive_in_denominator"],
            settings["distance"].normalize_embeddings,
            settings["scale"],
        ),
        TOL[dtype],
    )
    assert loss_fn.last_stats.num_terms == len(labels)


def test_by_hand_two_classes_on_the_unit_circle():
    # Proxies along the axes (given with norms 2 and 0.5; normalisation removes them):
    # p_0 = (1, 0), p_1 = (0, 1).
    # Sample A at 60 degrees, label 0: d^2(A, p_0) = 2 - 2 cos 60 = 1,
    #   d^2(A, p_1) = 2 - 2 cos 30 = 2 - sqrt 3.
    #   Eq. (13): -log(e^-1 / e^-(2 - sqrt 3)) = 1 - (2 - sqrt 3) = sqrt 3 - 1 = 0.7320508.
    #   Eq. (14): log(1 + e^(sqrt 3 - 1)) = 1.1247155.
    # Sample B = (3, 0), label 0, lies on p_0: d^2 = 0 and 2.
    #   Eq. (13): 0 - 2 = -2 (negative: the paper's form is not a log-probability).
    #   Eq. (14): log(1 + e^-2) = 0.1269280.
    # Batch means: eq. (13) (0.7320508 - 2) / 2 = -0.6339746; eq. (14) 0.6258217.
    embeddings = torch.tensor([[0.5, math.sqrt(3) / 2], [3.0, 0.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0])
    paper = ProxyNCALoss(2, 2).double()
    softmax = ProxyNCALoss(2, 2, include_positive_in_denominator=True).double()
    for loss_fn in (paper, softmax):
        set_proxies(loss_fn, [[2.0, 0.0], [0.0, 0.5]])
    torch.testing.assert_close(paper(embeddings, labels), torch.tensor(-0.6339745962155614, dtype=torch.float64))
    torch.testing.assert_close(softmax(embeddings, labels), torch.tensor(0.625821741477021, dtype=torch.float64))
    # Eq. (15) for sample A: q(p_0|A) = 1 / (1 + e^(sqrt 3 - 1)) = exp(-1.1247155) = 0.3247563.
    probabilities = softmax.class_probabilities(embeddings)
    torch.testing.assert_close(probabilities[0, 0], torch.tensor(math.exp(-1.1247154719110695), dtype=torch.float64))


def test_paper_form_reaches_its_lower_bound_log_c_minus_1_minus_4s():
    # Two classes, proxies opposite, sample on its own proxy: d^2 = 0 and 4, so
    # eq. (13) = 0 - 4 = -4 = log(2 - 1) - 4, and eq. (14) = log(1 + e^-4) = 0.0181499.
    embeddings = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    paper = ProxyNCALoss(2, 2).double()
    softmax = ProxyNCALoss(2, 2, include_positive_in_denominator=True).double()
    for loss_fn in (paper, softmax):
        set_proxies(loss_fn, [[1.0, 0.0], [-1.0, 0.0]])
    torch.testing.assert_close(paper(embeddings, torch.tensor([0])), torch.tensor(-4.0, dtype=torch.float64))
    torch.testing.assert_close(
        softmax(embeddings, torch.tensor([0])), torch.tensor(0.018149927917809738, dtype=torch.float64)
    )


@pytest.mark.parametrize("scale", [0.5, 2.0])
def test_random_batches_respect_the_bounds(scale):
    loss_fn, embeddings, labels = make_problem(torch.float64, n=32, num_classes=6, scale=scale)
    assert loss_fn(embeddings, labels).item() >= math.log(6 - 1) - 4 * scale
    loss_fn.include_positive_in_denominator = True
    assert loss_fn(embeddings, labels).item() >= 0.0


@pytest.mark.parametrize("norm", [1.0, 1.5])
def test_eqs_16_17_fixed_norm_proxy_nca_is_bias_free_softmax_with_logits_2xp(norm):
    # With ||x|| = ||p|| = s, -d^2 = 2 x.p - 2 s^2 and the constant cancels in eq. (15).
    generator = torch.Generator().manual_seed(7)
    embeddings = F.normalize(torch.randn(9, 5, generator=generator, dtype=torch.float64), dim=1) * norm
    proxies = F.normalize(torch.randn(4, 5, generator=generator, dtype=torch.float64), dim=1) * norm
    labels = torch.randint(0, 4, (9,), generator=generator)
    loss_fn = ProxyNCALoss(
        4, 5, include_positive_in_denominator=True, distance=SquaredEuclideanDistance(normalize_embeddings=False)
    ).double()
    set_proxies(loss_fn, proxies.tolist())
    torch.testing.assert_close(loss_fn(embeddings, labels), F.cross_entropy(2 * embeddings @ proxies.T, labels))
    torch.testing.assert_close(
        loss_fn.class_probabilities(embeddings), torch.softmax(2 * embeddings @ proxies.T, dim=1)
    )


@pytest.mark.parametrize("scale", [1.0, 10.0])
def test_softmax_form_equals_norm_softmax_at_temperature_one_over_2s(scale):
    # On the unit sphere -s d^2 = 2 s cos - 2 s, so eq. (14) is NormSoftmax with T = 1 / (2 s).
    loss_fn, embeddings, labels = make_problem(torch.float64, include_positive_in_denominator=True, scale=scale)
    norm_softmax = NormSoftmaxLoss(4, 3, temperature=1 / (2 * scale)).double()
    norm_softmax.load_state_dict(loss_fn.state_dict())
    torch.testing.assert_close(loss_fn(embeddings, labels), norm_softmax(embeddings, labels))


def test_class_probabilities_are_eq_15():
    loss_fn, embeddings, labels = make_problem(torch.float64, scale=2.0)
    x = F.normalize(embeddings.detach(), dim=1)
    p = F.normalize(loss_fn.weight.detach(), dim=1)
    expected = torch.zeros(len(x), len(p), dtype=torch.float64)
    for i in range(len(x)):
        weights = [math.exp(-2.0 * float(((x[i] - p[c]) ** 2).sum())) for c in range(len(p))]
        for c in range(len(p)):
            expected[i, c] = weights[c] / sum(weights)
    torch.testing.assert_close(loss_fn.class_probabilities(embeddings), expected)


def test_batch_permutation_invariance():
    loss_fn, embeddings, labels = make_problem(torch.float64, n=12)
    permutation = torch.randperm(12, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(loss_fn(embeddings[permutation], labels[permutation]), loss_fn(embeddings, labels))


@pytest.mark.parametrize("include_positive", [False, True])
def test_large_scale_is_finite_in_float32_even_when_misclassified(include_positive):
    # Proxies p_0 = (1, 0), p_1 = (0, 1), scale 100, both samples labelled 0.
    # Sample 1 lies on p_1 (misclassified): d^2 = 2 to its proxy, 0 to the other.
    #   Eq. (13): 100 * 2 - 100 * 0 = 200. Eq. (14): 200 + log(1 + e^-200) = 200 in float32.
    # Sample 2 lies on p_0: eq. (13) 0 - 200 = -200; eq. (14) log(1 + e^-200) = 0.
    # Means: eq. (13) 0, eq. (14) 100.
    loss_fn = ProxyNCALoss(2, 2, include_positive_in_denominator=include_positive, scale=100.0)
    set_proxies(loss_fn, [[1.0, 0.0], [0.0, 1.0]], dtype=torch.float32)
    embeddings = torch.tensor([[0.0, 1.0], [1.0, 0.0]], requires_grad=True)
    expected = torch.tensor((200.0 + (-200.0 if not include_positive else 0.0)) / 2)
    assert_loss_and_finite_gradients(loss_fn, embeddings, torch.tensor([0, 0]), expected)


def test_float64_batch_with_float32_proxies_trains_the_float32_parameter():
    loss_fn = ProxyNCALoss(3, 2)
    embeddings = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    loss = loss_fn(embeddings, torch.tensor([0, 1, 2, 0]))
    loss.backward()
    assert loss.dtype == torch.float64
    assert loss_fn.weight.grad is not None and loss_fn.weight.grad.dtype == torch.float32


def test_proxies_are_normalised_detached_and_the_parameter_is_trainable():
    loss_fn = ProxyNCALoss(5, 3)
    assert [name for name, _ in loss_fn.named_parameters()] == ["weight"]
    assert loss_fn.weight.shape == (5, 3)
    torch.testing.assert_close(loss_fn.proxies.norm(dim=1), torch.ones(5))
    assert not loss_fn.proxies.requires_grad
    raw = ProxyNCALoss(5, 3, distance=SquaredEuclideanDistance(normalize_embeddings=False))
    torch.testing.assert_close(raw.proxies, raw.weight.detach())


def test_empty_batch_gives_attached_zero_and_can_warn():
    loss_fn = ProxyNCALoss(3, 2, warn_if_empty=True)
    embeddings = torch.zeros(0, 2, requires_grad=True)
    assert_attached_zero_and_warning(loss_fn, embeddings, torch.zeros(0, dtype=torch.long))
    assert loss_fn.last_stats.empty


def test_bad_input_raises():
    loss_fn = ProxyNCALoss(3, 2)
    embeddings = torch.randn(2, 2)
    with pytest.raises(ValueError, match="0..2"):
        loss_fn(embeddings, torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="0..2"):
        loss_fn(embeddings, torch.tensor([-1, 0]))
    with pytest.raises(ValueError, match="integer"):
        loss_fn(embeddings, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"\(batch, 2\)"):
        loss_fn(torch.randn(2, 3), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="indices_tuple"):
        loss_fn(embeddings, torch.tensor([0, 1]), (torch.tensor([0]), torch.tensor([1]), torch.tensor([1])))
    for bad_scale in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="scale"):
            ProxyNCALoss(3, 2, scale=bad_scale)
    with pytest.raises(ValueError, match="num_classes"):
        ProxyNCALoss(1, 2)
    with pytest.raises(ValueError, match="embedding_dim"):
        ProxyNCALoss(3, 0)


# Agreement with pytorch-metric-learning ------------------------------------------------------
@pytest.mark.parametrize("scale", [1.0, 4.0])
def test_agrees_with_pytorch_metric_learning_softmax_form(scale):
    # PML's ProxyNCALoss: squared L2 distance on normalised embeddings and proxies, a
    # softmax over all proxies (positive included, eq. (14)) scaled by softmax_scale.
    from pytorch_metric_learning.losses import ProxyNCALoss as PMLProxyNCALoss

    loss_fn, embeddings, labels = make_problem(
        torch.float64, n=10, dim=4, num_classes=5, include_positive_in_denominator=True, scale=scale
    )
    pml = PMLProxyNCALoss(num_classes=5, embedding_size=4, softmax_scale=scale).double()
    with torch.no_grad():
        pml.proxies.copy_(loss_fn.weight)
    pml_embeddings = embeddings.detach().clone().requires_grad_()

    ours, theirs = loss_fn(embeddings, labels), pml(pml_embeddings, labels)
    torch.testing.assert_close(ours, theirs)
    ours.backward()
    theirs.backward()
    torch.testing.assert_close(embeddings.grad, pml_embeddings.grad)
    torch.testing.assert_close(loss_fn.weight.grad, pml.proxies.grad)
    # The paper's form (positive excluded) is a different number.
    loss_fn.include_positive_in_denominator = False
    assert not torch.allclose(loss_fn(embeddings, labels), theirs)


def test_no_warning_on_a_normal_batch():
    loss_fn, embeddings, labels = make_problem(torch.float32, warn_if_empty=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss_fn(embeddings, labels)


# Dynamic assignment, eq. (12) -------------------------------------------------------------
def brute_dynamic_proxy_nca(embeddings, proxies, labels, per_class, include_positive, normalize, scale):
    """Eq. (12) then (13)/(14), sample by sample: the nearest of the class's proxies is the positive."""
    total = 0.0
    unit = (lambda v: v / v.norm()) if normalize else (lambda v: v)
    for i in range(embeddings.shape[0]):
        x = unit(embeddings[i])
        own = [r for r in range(proxies.shape[0]) if r // per_class == int(labels[i])]
        nearest = min(own, key=lambda r: ((x - unit(proxies[r])) ** 2).sum().item())
        positive = torch.exp(-scale * ((x - unit(proxies[nearest])) ** 2).sum())
        denominator = positive if include_positive else 0.0
        for r in range(proxies.shape[0]):
            if r not in own:
                denominator = denominator + torch.exp(-scale * ((x - unit(proxies[r])) ** 2).sum())
        total = total - torch.log(positive / denominator)
    return total / embeddings.shape[0]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("settings", CASES)
def test_dynamic_assignment_matches_brute_force_values_and_gradients(dtype, settings):
    loss_fn, embeddings, labels = make_problem(dtype, n=10, spread=0.7, proxies_per_class=3, **settings)
    assert loss_fn.weight.shape == (4 * 3, 3)
    assert_same_value_and_weight_grads(
        loss_fn,
        embeddings,
        labels,
        lambda e, proxies: brute_dynamic_proxy_nca(
            e,
            proxies,
            labels,
            3,
            settings["include_positive_in_denominator"],
            settings["distance"].normalize_embeddings,
            settings["scale"],
        ),
        TOL[dtype],
    )


def test_dynamic_assignment_picks_the_nearest_proxy_of_the_class():
    loss_fn = ProxyNCALoss(2, 2, proxies_per_class=2, distance=SquaredEuclideanDistance())
    #            class 0: two modes        class 1: two modes
    set_proxies(loss_fn, [[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    embeddings = torch.tensor([[0.9, 0.1], [-0.8, 0.0], [0.1, 0.95], [0.0, -0.7], [0.6, 0.6]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1, 0])
    # The last point is nearer to class 1's proxy (0, 1) than to (-1, 0), but only class 0's count.
    assert loss_fn.assign(embeddings, labels).tolist() == [0, 1, 2, 3, 0]


def test_two_copies_of_each_proxy_keep_the_positive_and_count_each_negative_twice():
    static, embeddings, labels = make_problem(torch.float64, n=12, spread=0.7, include_positive_in_denominator=True)
    assert static.proxies_per_class == 1
    dynamic = ProxyNCALoss(4, 3, proxies_per_class=2, include_positive_in_denominator=True).double()
    set_proxies(dynamic, static.weight.detach().repeat_interleave(2, dim=0).tolist())
    logits = static.logits(embeddings).detach()
    own = F.one_hot(labels, 4).bool()
    positive = logits[own]
    negatives = logits.masked_fill(own, float("-inf")) + math.log(2.0)
    expected = (torch.logsumexp(torch.cat([positive[:, None], negatives], dim=1), dim=1) - positive).mean()
    torch.testing.assert_close(dynamic(embeddings, labels).detach(), expected)


def test_bad_proxies_per_class_is_named():
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="rows_per_class must be an integer"):
            ProxyNCALoss(3, 2, proxies_per_class=bad)
