import torch

from dmlnotes.losses.base import flush_subnormal_gradients

TINY = torch.finfo(torch.float32).tiny


def test_flush_is_the_identity_forward_and_zeroes_only_subnormal_gradients():
    values = torch.randn(5, requires_grad=True)
    upstream = torch.tensor([1.0, TINY / 4, -TINY / 8, TINY, -2.5])  # two subnormal entries
    flushed = flush_subnormal_gradients(values)
    assert torch.equal(flushed, values)
    flushed.backward(upstream)
    assert torch.equal(values.grad, torch.tensor([1.0, 0.0, 0.0, TINY, -2.5]))


def test_flush_leaves_tensors_without_gradient_alone():
    values = torch.randn(3)
    assert flush_subnormal_gradients(values) is values
    integers = torch.arange(3)
    assert flush_subnormal_gradients(integers) is integers
