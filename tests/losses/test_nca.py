import math

import pytest
import torch

from dmlnotes.losses.nca import NCALoss
from loss_testing import DTYPE_AND_TOL, assert_attached_zero_and_warning


def brute_force_nca(x, y, scale=1.0):
    terms = []
    for i in range(len(y)):
        weights = {j: math.exp(-scale * float(((x[i] - x[j]) ** 2).sum())) for j in range(len(y)) if j != i}
        positive = sum(w for j, w in weights.items() if y[j] == y[i])
        if any(y[j] == y[i] for j in weights):
            terms.append(-math.log(positive / sum(weights.values())))
    return sum(terms) / len(terms)


def brute_force_nca_torch(x, y, scale=1.0):
    """The same loop in torch, for gradients."""
    terms = []
    for i in range(len(y)):
        others = [j for j in range(len(y)) if j != i]
        positives = [j for j in others if y[j] == y[i]]
        if positives:
            w = {j: torch.exp(-scale * ((x[i] - x[j]) ** 2).sum()) for j in others}
            terms.append(-torch.log(sum(w[j] for j in positives) / sum(w.values())))
    return torch.stack(terms).mean()


def test_hand_computed_three_points():
    # Points 0 and 1 (class a) and 2 (class b) on a line. Squared distances: d01 = 1, d02 = 4, d12 = 1.
    # Point 0: p(1) = e^-1 / (e^-1 + e^-4).  Point 1: p(0) = e^-1 / (e^-1 + e^-1) = 1/2.  Point 2 has no positive.
    x = torch.tensor([[0.0], [1.0], [2.0]])
    y = torch.tensor([0, 0, 1])
    expected = (-math.log(math.exp(-1) / (math.exp(-1) + math.exp(-4))) + math.log(2)) / 2
    assert float(NCALoss()(x, y)) == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx((0.04858735 + 0.69314718) / 2, rel=1e-6)


@pytest.mark.parametrize("dtype, tol", DTYPE_AND_TOL)
def test_values_and_gradients_match_a_loop(dtype, tol):
    torch.manual_seed(0)
    x = torch.randn(12, 3, dtype=dtype, requires_grad=True)
    y = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 4, 5])
    ours = NCALoss(scale=0.7)(x, y)
    reference = brute_force_nca_torch(x, y, scale=0.7)
    assert float(ours.detach()) == pytest.approx(brute_force_nca(x.detach().double(), y, 0.7), rel=tol)
    (g_ours,) = torch.autograd.grad(ours, x)
    (g_ref,) = torch.autograd.grad(reference, x)
    assert torch.allclose(g_ours, g_ref, atol=tol * 10)


def test_permutation_invariance_and_agreement_with_pytorch_metric_learning():
    from pytorch_metric_learning.distances import LpDistance
    from pytorch_metric_learning.losses import NCALoss as PMLNCALoss

    torch.manual_seed(1)
    x, y = torch.randn(20, 4, dtype=torch.float64), torch.randint(0, 4, (20,))
    perm = torch.randperm(20)
    assert float(NCALoss()(x, y)) == pytest.approx(float(NCALoss()(x[perm], y[perm])), rel=1e-12)
    # PML normalises embeddings by default; NCA works on them as given.
    pml = PMLNCALoss(softmax_scale=2.0, distance=LpDistance(power=2, normalize_embeddings=False))
    assert float(NCALoss(scale=2.0)(x, y)) == pytest.approx(float(pml(x, y)), rel=1e-9)


def test_stays_finite_for_far_apart_points():
    x = torch.tensor([[0.0], [100.0], [300.0], [1000.0]], requires_grad=True)
    loss = NCALoss(scale=10.0)(x, torch.tensor([0, 0, 1, 1]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()


def test_batch_without_positives_gives_attached_zero_and_warns():
    x = torch.randn(3, 2, requires_grad=True)
    assert_attached_zero_and_warning(NCALoss(warn_if_empty=True), x, torch.tensor([0, 1, 2]))


def test_bad_scale_is_rejected():
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="scale"):
            NCALoss(scale=bad)


def test_far_apart_batch_with_subnormal_probabilities_keeps_float64_gradients():
    # Squared distances around 90: exp(-d^2) lies in float32's subnormal range, which the
    # loss drops from its backward pass (for speed). The gradient must not notice.
    torch.manual_seed(3)
    x64 = (1.7 * torch.randn(24, 16, dtype=torch.float64)).requires_grad_()
    y = torch.arange(6).repeat_interleave(4)
    x32 = x64.detach().float().requires_grad_()
    probabilities = torch.softmax(-(torch.cdist(x32, x32) ** 2) - torch.eye(24) * 1e4, dim=1)
    assert ((probabilities > 0) & (probabilities < torch.finfo(torch.float32).tiny)).any()
    (g32,) = torch.autograd.grad(NCALoss()(x32, y), x32)
    (g64,) = torch.autograd.grad(brute_force_nca_torch(x64, y), x64)
    assert torch.allclose(g32.double(), g64, rtol=1e-4, atol=1e-6 * float(g64.abs().max()))
