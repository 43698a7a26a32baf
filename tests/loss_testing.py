"""Plumbing shared by the test files: autograd helpers, random batches, tolerance tables,
the empty-batch check and a tiny image data set.

Helpers only, no tests: pytest does not collect this file (its name does not start with
``test_``); ``pythonpath = ["tests"]`` in pyproject.toml makes ``from loss_testing import ...``
work from every test folder. The brute-force reference of each loss stays in that loss's own
test file, written out as plain loops: only what several files did in the same way lives here.
"""

import warnings

import pytest
import torch

from dmlnotes.data import InMemoryDataset
from dmlnotes.losses import EmptyBatchWarning

# Tolerances ------------------------------------------------------------------------------
DTYPES = [torch.float64, torch.float32]

# For ``@pytest.mark.parametrize("dtype, tol", DTYPE_AND_TOL)``: values are compared with
# rtol = atol = tol, gradients with ten times that.
DTYPE_AND_TOL = [(torch.float64, 1e-10), (torch.float32, 1e-5)]

# Keyword arguments of torch.testing.assert_close by dtype. The pairwise losses (coupled
# clusters, lifted structure, N-pair) sum many distance terms in their loops, so float64 is
# given a little more room than for the softmax-type losses.
PAIRWISE_TOLERANCES = {torch.float64: dict(rtol=1e-9, atol=1e-10), torch.float32: dict(rtol=1e-4, atol=1e-5)}
SOFTMAX_TOLERANCES = {torch.float64: dict(rtol=1e-10, atol=1e-12), torch.float32: dict(rtol=1e-4, atol=1e-5)}


# Random batches ----------------------------------------------------------------------------
def random_embeddings(num_samples, dim, dtype, seed=0, scale=1.0, draw_dtype=None):
    """``scale * N(0, 1)`` samples of shape ``(num_samples, dim)`` from a generator seeded with ``seed``.

    They are drawn in ``draw_dtype`` (default: torch's default dtype) and then cast to ``dtype``,
    so a float32 and a float64 batch with the same seed hold the same numbers up to rounding.
    """
    generator = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(num_samples, dim, generator=generator, dtype=draw_dtype)
    if scale != 1.0:
        embeddings = scale * embeddings
    return embeddings.to(dtype)


def make_weighted_problem(loss_class, dtype, n=8, dim=3, num_classes=4, seed=0, spread=1.0, **loss_kwargs):
    """A loss with one weight (or proxy) per class, a leaf batch of embeddings and labels.

    Seeds the global generator with ``seed``, then builds ``loss_class(num_classes, dim, **loss_kwargs)``
    in ``dtype`` (its random initial weights), ``n`` embeddings ``spread * N(0, 1)`` that require
    grad and the labels ``randperm(n) % num_classes``.
    """
    torch.manual_seed(seed)
    loss_fn = loss_class(num_classes, dim, **loss_kwargs).to(dtype)
    embeddings = torch.randn(n, dim, dtype=dtype)
    if spread != 1.0:
        embeddings = embeddings * spread
    labels = torch.randperm(n) % num_classes
    return loss_fn, embeddings.requires_grad_(), labels


def separated_clusters():
    """Eight float64 points in three tight 2-D clusters (classes 0, 0, 0, 1, 1, 2, 2, 2).

    Centres (0, 0), (10, 0), (0, 10); each point within 0.05 of its centre in each coordinate,
    so a point is within 0.1 of its centre and at least 9 from every other class.
    """
    generator = torch.Generator().manual_seed(4)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2])
    embeddings = centres[labels] + 0.1 * (torch.rand(len(labels), 2, generator=generator, dtype=torch.float64) - 0.5)
    return embeddings, labels


def set_weights(loss_fn, rows, dtype=torch.float64):
    """Overwrite ``loss_fn.weight`` (class weights or proxies) with ``rows``."""
    with torch.no_grad():
        loss_fn.weight.copy_(torch.tensor(rows, dtype=dtype))


# Values and gradients ------------------------------------------------------------------------
def value_and_grad(fn, x):
    """``fn`` at a fresh leaf copy of ``x`` and its gradient there: ``(value, d value / d x)``."""
    x = x.detach().clone().requires_grad_(True)
    value = fn(x)
    (grad,) = torch.autograd.grad(value, x)
    return value.detach(), grad


def assert_same_value_and_grad(fn, reference, x, tol=None, grad_tol=None):
    """Assert that ``fn`` and ``reference`` agree at ``x`` in value and in gradient.

    ``tol`` holds the keyword arguments of torch.testing.assert_close for the values (default:
    its own defaults), ``grad_tol`` those for the gradients (default: ``tol``).
    Returns ``fn``'s value and gradient.
    """
    tol = {} if tol is None else tol
    grad_tol = tol if grad_tol is None else grad_tol
    value, grad = value_and_grad(fn, x)
    expected, expected_grad = value_and_grad(reference, x)
    torch.testing.assert_close(value, expected, **tol)
    torch.testing.assert_close(grad, expected_grad, **grad_tol)
    return value, grad


def assert_same_value_and_weight_grads(loss_fn, embeddings, labels, reference, tol):
    """Compare a loss with class weights against ``reference(embeddings, weights)``.

    ``embeddings`` is a leaf that requires grad. The reference gets detached copies of the
    embeddings and of ``loss_fn.weight``; the values, the gradients with respect to the
    embeddings and those with respect to the weights must agree within ``tol``.
    """
    reference_embeddings = embeddings.detach().clone().requires_grad_()
    reference_weights = loss_fn.weight.detach().clone().requires_grad_()

    got = loss_fn(embeddings, labels)
    expected = reference(reference_embeddings, reference_weights)
    torch.testing.assert_close(got, expected, **tol)
    got.backward()
    expected.backward()
    torch.testing.assert_close(embeddings.grad, reference_embeddings.grad, **tol)
    torch.testing.assert_close(loss_fn.weight.grad, reference_weights.grad, **tol)


def assert_loss_and_finite_gradients(loss_fn, embeddings, labels, expected):
    """``loss_fn(embeddings, labels)`` is ``expected`` (default tolerances) and back-propagates
    finite gradients into the embeddings (a leaf) and into ``loss_fn.weight``."""
    loss = loss_fn(embeddings, labels)
    loss.backward()
    torch.testing.assert_close(loss, expected)
    assert torch.isfinite(embeddings.grad).all() and torch.isfinite(loss_fn.weight.grad).all()


def reduce_terms(terms, reduction):
    """The losses' reductions by hand: "mean" of all terms, "mean_nonzero" of the positive ones."""
    if reduction == "mean":
        return sum(terms) / len(terms)
    if reduction != "mean_nonzero":
        raise ValueError(f"unknown reduction {reduction!r}")
    active = [t for t in terms if t > 0]
    return sum(active) / len(active)


# The empty batch -----------------------------------------------------------------------------
def _batch(embeddings, labels, indices):
    return (embeddings, labels) if indices is None else (embeddings, labels, indices)


def assert_attached_zero_and_warning(loss_fn, embeddings, labels, indices=None, match=None):
    """``loss_fn`` (built with ``warn_if_empty=True``) on a batch without terms warns with an
    EmptyBatchWarning (matching ``match``) and gives a zero attached to the graph whose
    gradient is finite and zero. ``embeddings`` is a leaf that requires grad; ``indices`` is
    the miner's tuple, if any."""
    with pytest.warns(EmptyBatchWarning, match=match):
        loss = loss_fn(*_batch(embeddings, labels, indices))
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.isfinite(embeddings.grad).all() and torch.all(embeddings.grad == 0)


def check_empty_batch(loss_fn, default_loss, embeddings, labels, indices=None, match=None):
    """The whole empty-batch contract of a loss:

    ``loss_fn`` (``warn_if_empty=True``) warns, returns an attached zero with a zero gradient and
    records ``last_stats.empty``; ``default_loss`` (the same loss with default settings) is silent.
    """
    assert_attached_zero_and_warning(loss_fn, embeddings, labels, indices, match=match)
    assert loss_fn.last_stats.empty
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        default_loss(*_batch(embeddings, labels, indices))  # silent by default


# Tiny data sets ------------------------------------------------------------------------------
def tiny_images(num_classes, per_class, seed):
    """``num_classes * per_class`` one-channel 12 x 12 images: a random prototype per class plus a little noise."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    prototypes = torch.rand(num_classes, 1, 12, 12, generator=generator)
    inputs = prototypes[labels] + 0.1 * torch.rand(len(labels), 1, 12, 12, generator=generator)
    return InMemoryDataset(inputs, labels)
