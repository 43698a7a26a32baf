import pytest
import torch

from dmlnotes.distances import (
    CosineSimilarity,
    EuclideanDistance,
    SquaredEuclideanDistance,
    pairwise_cosine_similarity,
    pairwise_euclidean,
    pairwise_squared_euclidean,
)


def loop_squared(x, y):
    return torch.tensor([[float(((a - b) ** 2).sum()) for b in y] for a in x], dtype=torch.float64)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_squared_and_plain_euclidean_against_a_loop(dtype):
    torch.manual_seed(0)
    x, y = torch.randn(7, 5, dtype=dtype), torch.randn(4, 5, dtype=dtype)
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    expected = loop_squared(x.double(), y.double())
    assert torch.allclose(pairwise_squared_euclidean(x, y).double(), expected, atol=tol)
    assert torch.allclose(pairwise_euclidean(x, y).double(), expected.sqrt(), atol=tol)
    assert torch.allclose(pairwise_squared_euclidean(x).double(), loop_squared(x.double(), x.double()), atol=tol)


def test_self_distances_have_an_exact_zero_diagonal():
    x = torch.randn(6, 3) * 1000
    assert torch.all(pairwise_squared_euclidean(x).diagonal() == 0)
    assert torch.all(pairwise_euclidean(x).diagonal() == 0)


def test_euclidean_gradient_is_finite_at_zero_distance():
    x = torch.tensor([[1.0, 2.0], [1.0, 2.0], [0.0, 0.0]], requires_grad=True)
    pairwise_euclidean(x).sum().backward()
    assert torch.isfinite(x.grad).all()
    # Only the pairs with the third point contribute: d/dx ||x - z|| = (x - z) / ||x - z||, twice (rows and columns).
    expected = 2 * torch.tensor([1.0, 2.0]) / 5**0.5
    assert torch.allclose(x.grad[0], expected, atol=1e-6)


def test_cosine_similarity_known_values():
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0], [1.0, 1.0]])
    sim = pairwise_cosine_similarity(x)
    assert sim[0, 1] == pytest.approx(0.0)
    assert sim[0, 2] == pytest.approx(-1.0)
    assert sim[0, 3] == pytest.approx(2**-0.5)
    assert torch.allclose(sim.diagonal(), torch.ones(4))


def test_distance_classes_and_margin_violation():
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    assert SquaredEuclideanDistance()(x)[0, 1] == pytest.approx(25.0)
    assert EuclideanDistance()(x)[0, 1] == pytest.approx(5.0)
    assert EuclideanDistance(normalize_embeddings=True)(torch.tensor([[2.0, 0.0], [0.0, 5.0]]))[0, 1] == pytest.approx(
        2**0.5
    )
    # Distances: closer should be smaller; similarities: closer should be larger.
    assert float(EuclideanDistance().margin_violation(torch.tensor(1.0), torch.tensor(3.0), 0.5)) == pytest.approx(-1.5)
    assert float(CosineSimilarity().margin_violation(torch.tensor(0.9), torch.tensor(0.2), 0.5)) == pytest.approx(-0.2)
    assert CosineSimilarity.is_similarity and not EuclideanDistance.is_similarity


@pytest.mark.parametrize("bad", [torch.zeros(3), torch.zeros(2, 3, 4), [[0.0, 1.0]]])
def test_bad_shapes_are_rejected(bad):
    with pytest.raises(ValueError, match="2-D"):
        pairwise_squared_euclidean(bad)


def test_dimension_mismatch_is_rejected():
    with pytest.raises(ValueError, match="dimensions differ"):
        pairwise_euclidean(torch.zeros(2, 3), torch.zeros(2, 4))


@pytest.mark.parametrize("function", [pairwise_squared_euclidean, pairwise_euclidean])
def test_float32_distances_stay_accurate_far_from_the_origin(function):
    # Norm about 1e3 and a spread about 1: |x|^2 + |y|^2 - 2 x.y alone keeps almost no float32 digits.
    generator = torch.Generator().manual_seed(0)
    x = 1000.0 + torch.randn(40, 16, generator=generator, dtype=torch.float64)
    y = 1000.0 + torch.randn(30, 16, generator=generator, dtype=torch.float64)
    for args in [(x,), (x, y)]:
        exact = function(*args)
        approx = function(*(a.float() for a in args)).double()
        assert torch.allclose(approx, exact, rtol=1e-4, atol=1e-4), (approx - exact).abs().max()
    # and without the shift, the textbook expansion in float32 is far off: the test can fail
    naive = (x.float() ** 2).sum(1, keepdim=True) + (y.float() ** 2).sum(1) - 2 * x.float() @ y.float().T
    assert (naive.double() - pairwise_squared_euclidean(x, y)).abs().max() > 1.0


def test_the_shift_passes_no_gradient_of_its_own():
    x = (5.0 + torch.randn(6, 3, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: pairwise_squared_euclidean(t), (x,))
    y = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: pairwise_squared_euclidean(a, b), (x, y))


@pytest.mark.parametrize("function", [pairwise_squared_euclidean, pairwise_euclidean, pairwise_cosine_similarity])
def test_non_finite_rows_are_named(function):
    x, y = torch.randn(5, 3), torch.randn(4, 3)
    x[1, 0] = float("nan")
    with pytest.raises(ValueError, match=r"embeddings contain NaN or inf in 1 of 5 rows \(1\)"):
        function(x)
    y[3, 2] = float("-inf")
    with pytest.raises(ValueError, match=r"second set of embeddings contain NaN or inf in 1 of 4 rows \(3\)"):
        function(torch.randn(5, 3), y)


def test_pair_primitives_flip_for_a_similarity():
    values = torch.tensor([0.2, 0.9])
    euclidean, cosine = EuclideanDistance(), CosineSimilarity()
    assert torch.equal(euclidean.farther_than(values, 0.5), values - 0.5)
    assert torch.equal(euclidean.closer_than(values, 0.5), 0.5 - values)
    assert torch.equal(cosine.farther_than(values, 0.5), 0.5 - values)
    assert torch.equal(cosine.closer_than(values, 0.5), values - 0.5)
    assert torch.equal(euclidean.as_logits(values, 2.0), -2.0 * values)
    assert torch.equal(cosine.as_logits(values, 2.0), 2.0 * values)


def test_nca_with_a_similarity_is_the_softmax_of_scaled_cosines():
    from dmlnotes.losses import NCALoss

    x = torch.randn(6, 3, dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    cos = pairwise_cosine_similarity(x).fill_diagonal_(float("-inf"))
    p = torch.softmax(4.0 * cos, dim=1)
    expected = -torch.log(torch.stack([p[i, (labels == labels[i]) & (torch.arange(6) != i)].sum() for i in range(6)]))
    torch.testing.assert_close(NCALoss(scale=4.0, distance=CosineSimilarity())(x, labels), expected.mean())


def test_finite_rows_whose_sum_overflows_are_accepted():
    from dmlnotes.checks import check_finite_rows

    big = torch.full((4, 4), 6e4, dtype=torch.float16)  # every entry finite, the sum is inf in float16
    assert torch.isinf(big.sum()) and check_finite_rows(big) is big
    big[2, 1] = float("nan")
    with pytest.raises(ValueError, match=r"1 of 4 rows \(2\)"):
        check_finite_rows(big)


@pytest.mark.parametrize("with_y", [False, True])
def test_closed_form_gradient_passes_gradcheck_and_gradgradcheck(with_y):
    torch.manual_seed(5)
    x = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    y = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    inputs = (x, y) if with_y else (x,)
    function = (lambda a, b: pairwise_squared_euclidean(a, b)) if with_y else (lambda a: pairwise_squared_euclidean(a))
    assert torch.autograd.gradcheck(function, inputs)
    assert torch.autograd.gradgradcheck(function, inputs)


def test_gradient_equals_the_loop_of_two_differences():
    torch.manual_seed(6)
    x, y = torch.randn(5, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    weights = torch.randn(5, 3, dtype=torch.float64)
    x.requires_grad_(True)
    (pairwise_squared_euclidean(x, y) * weights).sum().backward()
    expected = torch.stack([sum(2 * weights[i, j] * (x[i] - y[j]) for j in range(3)) for i in range(5)])
    torch.testing.assert_close(x.grad, expected.detach())
