"""Tests of dmlnotes.losses.proxy_anchor (Kim et al. 2020)."""

import math

import pytest
import torch

from dmlnotes.losses import ProxyAnchorLoss
from loss_testing import (
    DTYPES,
    assert_attached_zero_and_warning,
    assert_same_value_and_weight_grads,
    make_weighted_problem,
)
from loss_testing import SOFTMAX_TOLERANCES as TOL
from loss_testing import set_weights as set_proxies


def brute_proxy_anchor(embeddings, proxies, labels, alpha, margin):
    """The paper's loss, proxy by proxy and sample by sample; differentiable in both inputs."""
    positive_total, negative_total, with_positives = 0.0, 0.0, 0
    for c in range(proxies.shape[0]):
        p = proxies[c] / proxies[c].norm()
        positive_sum, negative_sum, has_positive = 0.0, 0.0, False
        for i in range(embeddings.shape[0]):
            cosine = (embeddings[i] / embeddings[i].norm()) @ p
            if int(labels[i]) == c:
                positive_sum = positive_sum + torch.exp(-alpha * (cosine - margin))
                has_positive = True
            else:
                negative_sum = negative_sum + torch.exp(alpha * (cosine + margin))
        if has_positive:
            positive_total = positive_total + torch.log(1 + positive_sum)
            with_positives += 1
        negative_total = negative_total + torch.log(1 + torch.as_tensor(negative_sum, dtype=embeddings.dtype))
    return positive_total / with_positives + negative_total / proxies.shape[0]


def make_problem(dtype, n=8, dim=3, num_classes=4, seed=0, **loss_kwargs):
    return make_weighted_problem(ProxyAnchorLoss, dtype, n, dim, num_classes, seed, **loss_kwargs)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("alpha, margin", [(32.0, 0.1), (4.0, 0.0), (1.0, 0.5)])
@pytest.mark.parametrize("num_classes", [4, 6])  # 6 > 8 / 2 leaves proxies without positives
def test_matches_brute_force_values_and_gradients(dtype, alpha, margin, num_classes):
    loss_fn, embeddings, labels = make_problem(dtype, num_classes=num_classes, alpha=alpha, margin=margin)
    if num_classes == 6:
        labels = torch.tensor([0, 0, 1, 1, 1, 2, 4, 4])  # classes 3 and 5 have no sample
    # alpha = 32 multiplies float32's rounding of the cosines by 32.
    tol = dict(rtol=1e-4, atol=1e-4) if (alpha >= 32 and dtype == torch.float32) else TOL[dtype]
    assert_same_value_and_weight_grads(
        loss_fn,
        embeddings,
        labels,
        lambda e, proxies: brute_proxy_anchor(e, proxies, labels, alpha, margin),
        tol,
    )
    assert loss_fn.last_stats.num_terms == num_classes


def test_by_hand_two_proxies_on_the_axes():
    # Proxies p_0 = (2, 0), p_1 = (0, 0.5) (normalisation removes the norms); one sample
    # x = (3, 0), label 0: s(x, p_0) = 1, s(x, p_1) = 0. P+ = {p_0}, |P| = 2.
    # Positive term: log(1 + e^{-alpha (1 - delta)}). Negative terms: p_0 has none (0),
    # p_1: log(1 + e^{alpha (0 + delta)}). Loss = pos / 1 + (0 + neg) / 2.
    for alpha, margin in [(32.0, 0.1), (2.0, 0.3)]:
        loss_fn = ProxyAnchorLoss(2, 2, alpha=alpha, margin=margin).double()
        set_proxies(loss_fn, [[2.0, 0.0], [0.0, 0.5]])
        expected = math.log1p(math.exp(-alpha * (1 - margin))) + math.log1p(math.exp(alpha * margin)) / 2
        got = loss_fn(torch.tensor([[3.0, 0.0]], dtype=torch.float64), torch.tensor([0]))
        torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64))


def test_by_hand_alpha_32():
    # Same layout, alpha = 32, delta = 0.1: pos = log(1 + e^-28.8) ~ 3.1e-13,
    # neg(p_1) = log(1 + e^3.2) = 3.2 + log(1 + e^-3.2) = 3.2 + 0.039953 = 3.239953; loss = 1.6199766.
    loss_fn = ProxyAnchorLoss(2, 2).double()
    set_proxies(loss_fn, [[1.0, 0.0], [0.0, 1.0]])
    got = loss_fn(torch.tensor([[1.0, 0.0]], dtype=torch.float64), torch.tensor([0]))
    assert abs(got.item() - 1.6199766) < 1e-6


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_alpha_32_is_finite_in_low_precision_even_when_everything_is_wrong(dtype):
    # Every sample sits on another class's proxy: exponents of +alpha (1 + delta) = 35.2,
    # e^35.2 = 2e15 overflows float16 (max 65504) unless done as a log-sum-exp.
    loss_fn = ProxyAnchorLoss(3, 3)
    set_proxies(loss_fn, torch.eye(3).tolist(), dtype=torch.float32)
    embeddings = torch.eye(3, dtype=dtype)[[1, 2, 0, 1]].requires_grad_()
    labels = torch.tensor([0, 1, 2, 0])
    loss = loss_fn(embeddings, labels)
    loss.backward()
    # Every proxy's positives are orthogonal to it (s = 0) and a negative lies on it (s = 1),
    # so its negative term is about alpha (1 + delta) = 35.2. Compare with float64.
    reference = ProxyAnchorLoss(3, 3).double()
    set_proxies(reference, torch.eye(3).tolist())
    expected = reference(embeddings.detach().double(), labels)
    assert loss.dtype == dtype and torch.isfinite(loss) and torch.isfinite(embeddings.grad).all()
    assert torch.isfinite(loss_fn.weight.grad).all()
    assert abs(loss.double().item() - expected.item()) <= 1e-2 * expected.item()
    assert expected.item() > 35.0  # the overflowing regime was reached


def test_agrees_with_pytorch_metric_learning_values_and_gradients():
    from pytorch_metric_learning.losses import ProxyAnchorLoss as PMLProxyAnchorLoss

    loss_fn, embeddings, labels = make_problem(torch.float64, n=12, dim=5, num_classes=6)
    pml = PMLProxyAnchorLoss(num_classes=6, embedding_size=5).double()  # alpha 32, margin 0.1
    with torch.no_grad():
        pml.proxies.copy_(loss_fn.weight)  # both (num_classes, dim)
    pml_embeddings = embeddings.detach().clone().requires_grad_()
    ours, theirs = loss_fn(embeddings, labels), pml(pml_embeddings, labels)
    torch.testing.assert_close(ours, theirs)
    ours.backward()
    theirs.backward()
    torch.testing.assert_close(embeddings.grad, pml_embeddings.grad)
    torch.testing.assert_close(loss_fn.weight.grad, pml.proxies.grad)


def test_batch_permutation_invariance_and_proxies_are_unit():
    loss_fn, embeddings, labels = make_problem(torch.float64, n=12)
    permutation = torch.randperm(12, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(loss_fn(embeddings[permutation], labels[permutation]), loss_fn(embeddings, labels))
    torch.testing.assert_close(loss_fn.proxies.norm(dim=1), torch.ones(4, dtype=torch.float64))


def test_parameter_group_gives_the_proxies_their_learning_rate():
    loss_fn = ProxyAnchorLoss(3, 2)
    group = loss_fn.parameter_group(lr=100 * 1e-4)
    assert group["lr"] == pytest.approx(1e-2) and group["params"][0] is loss_fn.weight


def test_empty_batch_and_bad_input():
    loss_fn = ProxyAnchorLoss(3, 2, warn_if_empty=True)
    embeddings = torch.zeros(0, 2, requires_grad=True)
    assert_attached_zero_and_warning(loss_fn, embeddings, torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="0..2"):
        loss_fn(torch.randn(2, 2), torch.tensor([0, 3]))
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="alpha"):
            ProxyAnchorLoss(3, 2, alpha=bad)
    with pytest.raises(ValueError, match="margin"):
        ProxyAnchorLoss(3, 2, margin=-0.1)
