import pytest
import torch
import torch.nn.functional as F

from dmlnotes.losses import DeepClusteringLoss
from loss_testing import PAIRWISE_TOLERANCES, assert_same_value_and_grad, random_embeddings


def loop_deep_clustering(embeddings, labels, normalize=True):
    """``sum_ij (<v_i, v_j> - [y_i = y_j])^2`` pair by pair, in Python floats."""
    vectors = F.normalize(embeddings.double(), dim=1) if normalize else embeddings.double()
    rows = [list(map(float, v)) for v in vectors]
    ids = labels.tolist()
    total = 0.0
    for i in range(len(ids)):
        for j in range(len(ids)):
            dot = sum(a * b for a, b in zip(rows[i], rows[j]))
            total += (dot - (1.0 if ids[i] == ids[j] else 0.0)) ** 2
    return total


def naive_deep_clustering(embeddings, labels, normalize=True, reduction="mean"):
    """The N x N form: ||V V^T - Y Y^T||_F^2, divided by N for "mean"."""
    vectors = F.normalize(embeddings, dim=1) if normalize else embeddings
    same_class = (labels.unsqueeze(0) == labels.unsqueeze(1)).to(embeddings.dtype)
    total = ((vectors @ vectors.T - same_class) ** 2).sum()
    return total / len(labels) if reduction == "mean" else total


def test_hand_computed_three_points():
    # V rows (1, 0), (0, 1), (1, 0), labels 0, 0, 1:
    # V V^T = [[1, 0, 1], [0, 1, 0], [1, 0, 1]], Y Y^T = [[1, 1, 0], [1, 1, 0], [0, 0, 1]];
    # the residual has four entries of size 1 (pairs (0, 1) and (0, 2), both orders): rows 2, 1, 1.
    embeddings = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    labels = torch.tensor([0, 0, 1])
    assert float(DeepClusteringLoss(reduction="sum")(embeddings, labels)) == pytest.approx(4.0, abs=1e-6)
    assert float(DeepClusteringLoss()(embeddings, labels)) == pytest.approx(4.0 / 3.0, abs=1e-6)
    # Scaling a row changes nothing when normalising. Without normalisation, with row 0 = (2, 0):
    # entry (0, 0) is 4 - 1 = 3, entries (0, 1) and (1, 0) are 0 - 1, entries (0, 2) and (2, 0) are 2 - 0;
    # the sum is 9 + 2 * 1 + 2 * 4 = 19.
    scaled = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    assert float(DeepClusteringLoss(reduction="sum")(scaled, labels)) == pytest.approx(4.0, abs=1e-6)
    unnormalised = DeepClusteringLoss(normalize_embeddings=False, reduction="sum")
    assert float(unnormalised(scaled, labels)) == pytest.approx(19.0, abs=1e-5)


def test_one_hot_codes_of_the_labels_give_an_exact_zero():
    # V = Y: every sample is the unit vector of its class, so V V^T = Y Y^T.
    labels = torch.tensor([3, 0, 0, 2, 3, 3, 1])
    embeddings = F.one_hot(labels, 5).double().requires_grad_()
    loss_fn = DeepClusteringLoss()
    loss = loss_fn(embeddings, labels)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.all(embeddings.grad == 0)
    assert loss_fn.last_stats.num_terms == 7 and loss_fn.last_stats.num_active == 0


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_equals_the_n_by_n_form_in_value_and_gradient(dtype, reduction, normalize):
    embeddings = random_embeddings(40, 6, dtype, seed=1, draw_dtype=torch.float64)
    labels = torch.randint(0, 7, (40,), generator=torch.Generator().manual_seed(2))
    loss_fn = DeepClusteringLoss(normalize_embeddings=normalize, reduction=reduction)
    value, _ = assert_same_value_and_grad(
        lambda x: loss_fn(x, labels),
        lambda x: naive_deep_clustering(x, labels, normalize, reduction),
        embeddings,
        tol=PAIRWISE_TOLERANCES[dtype],
    )
    total = loop_deep_clustering(embeddings, labels, normalize)
    expected = total / 40 if reduction == "mean" else total
    assert float(value) == pytest.approx(expected, rel=1e-10 if dtype == torch.float64 else 1e-5)


def test_float32_on_a_large_batch_stays_close_to_float64():
    embeddings = random_embeddings(2048, 32, torch.float64, seed=3)
    labels = torch.arange(512).repeat_interleave(4)
    (expected, expected_grad) = _value_and_grad(naive_deep_clustering, embeddings, labels)
    (value, grad) = _value_and_grad(DeepClusteringLoss(), embeddings.float(), labels)
    assert float(value) == pytest.approx(float(expected), rel=1e-5)
    assert float((grad.double() - expected_grad).abs().max()) <= 1e-4 * float(expected_grad.abs().max())


def _value_and_grad(fn, embeddings, labels):
    embeddings = embeddings.detach().clone().requires_grad_()
    value = fn(embeddings, labels)
    value.backward()
    return value.detach(), embeddings.grad


def test_rows_are_the_terms_of_the_reductions():
    # Classes 0 and 1 sit on e0 and e1; class 2 has e2 and (0, 0, 0.6, 0.8). Only the entries
    # (4, 5) and (5, 4) are off: 0.6 - 1 = -0.4. Rows 0, 0, 0, 0, 0.16, 0.16.
    e = torch.eye(4, dtype=torch.float64)
    embeddings = torch.stack([e[0], e[0], e[1], e[1], e[2], torch.tensor([0.0, 0.0, 0.6, 0.8], dtype=torch.float64)])
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    expected = {"sum": 0.32, "mean": 0.32 / 6, "mean_nonzero": 0.16}
    for reduction, value in expected.items():
        loss_fn = DeepClusteringLoss(reduction=reduction)
        assert float(loss_fn(embeddings, labels)) == pytest.approx(value, rel=1e-12)
        assert loss_fn.last_stats.num_terms == 6 and loss_fn.last_stats.num_active == 2


def test_label_ids_only_matter_through_equality():
    embeddings = random_embeddings(10, 3, torch.float64, seed=6)
    labels = torch.tensor([5, 5, -1, 100, -1, 5, 100, 2, 2, 7])
    relabelled = torch.unique(labels, return_inverse=True)[1]
    loss_fn = DeepClusteringLoss()
    assert float(loss_fn(embeddings, labels)) == pytest.approx(float(loss_fn(embeddings, relabelled)), rel=1e-14)


def test_no_n_by_n_tensor_is_kept_for_the_backward_pass():
    n, dim = 256, 8
    embeddings = random_embeddings(n, dim, torch.float32, seed=7).requires_grad_()
    labels = torch.arange(64).repeat_interleave(4)
    sizes = []

    def pack(tensor):
        sizes.append(tensor.numel())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        DeepClusteringLoss()(embeddings, labels).backward()
    assert sizes and max(sizes) <= n * dim
    # The check can fail: the N x N form keeps an (N, N) matrix.
    sizes.clear()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        naive_deep_clustering(embeddings, labels).backward()
    assert max(sizes) >= n * n


def test_refuses_a_miners_tuple():
    embeddings = random_embeddings(6, 3, torch.float64)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    tuple_ = (torch.tensor([0]), torch.tensor([1]), torch.tensor([2]))
    with pytest.raises(ValueError, match="does not take an indices_tuple"):
        DeepClusteringLoss()(embeddings, labels, tuple_)


def test_the_rows_closed_form_gradient_for_equal_and_unequal_row_weights():
    from dmlnotes.losses.deep_clustering import _ResidualRows

    vectors = random_embeddings(7, 3, torch.float64, seed=8).requires_grad_()
    classes = torch.tensor([0, 1, 1, 2, 0, 1, 3])
    rows = lambda v: _ResidualRows.apply(v, classes, 4)  # noqa: E731
    # gradcheck feeds one-hot row weights (the general branch) ...
    assert torch.autograd.gradcheck(rows, (vectors,))
    # ... and the reductions weight every row alike (the shortcut): both against autograd on the N x N residual.
    same_class = (classes.unsqueeze(0) == classes.unsqueeze(1)).double()
    for weights in (torch.full((7,), 0.3, dtype=torch.float64), torch.linspace(-1, 2, 7, dtype=torch.float64)):
        (closed_form,) = torch.autograd.grad(rows(vectors), vectors, weights)
        (expected,) = torch.autograd.grad(((vectors @ vectors.T - same_class) ** 2).sum(dim=1), vectors, weights)
        torch.testing.assert_close(closed_form, expected, rtol=1e-12, atol=1e-12)
