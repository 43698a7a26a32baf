import math

import numpy as np
import pytest
import torch
from torch import nn

from dmlnotes.data import InMemoryDataset
from dmlnotes.device import seed_everything
from dmlnotes.diagnostics import GradientNorms, embedding_spread
from dmlnotes.losses.base import LossTerms, MetricLoss
from dmlnotes.models import MLPEmbedding
from dmlnotes.training import fit


class PullToOnes(MetricLoss):
    """Test loss: squared distance of each embedding to the point (1, ..., 1)."""

    def compute_loss(self, embeddings, labels, indices_tuple):
        return LossTerms(((embeddings - 1.0) ** 2).sum(dim=1))


def blobs(num_classes=4, per_class=20):
    torch.manual_seed(0)
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    return InMemoryDataset(torch.randn(len(labels), 8), labels)


def test_gradient_norms_records_the_norm_of_each_steps_gradient():
    seed_everything(0)
    data = blobs()
    model = MLPEmbedding(8, 2)
    batch = list(range(0, 80, 4))
    # The first step's gradient computed independently, on a copy of the model before training.
    reference = MLPEmbedding(8, 2)
    reference.load_state_dict(model.state_dict())
    inputs, labels = data.get_batch(batch)
    gradients = torch.autograd.grad(PullToOnes()(reference(inputs), labels), list(reference.parameters()))
    expected = torch.cat([g.flatten() for g in gradients]).norm()
    recorder = GradientNorms(model.parameters())
    fit(model, PullToOnes(), data, batch_sampler=[batch], steps=3, lr=1e-2, device="cpu", progress=False,
        callbacks=[recorder])  # fmt: skip
    assert len(recorder.norms) == 3
    assert recorder.norms[0] == pytest.approx(float(expected), rel=1e-5)
    assert all(n > 0 for n in recorder.norms)


def test_gradient_norms_is_zero_for_parameters_without_gradient_and_needs_parameters():
    unused = nn.Linear(2, 2)  # not used by the loss: its parameters never receive a gradient
    recorder = GradientNorms(unused.parameters())
    fit(MLPEmbedding(8, 2), PullToOnes(), blobs(), steps=2, device="cpu", progress=False, callbacks=[recorder])
    assert recorder.norms == [0.0, 0.0]
    with pytest.raises(ValueError, match="at least one parameter"):
        GradientNorms([])
    with pytest.raises(ValueError, match="at least one parameter"):
        GradientNorms([nn.Parameter(torch.ones(2), requires_grad=False)])


def test_embedding_spread_by_hand():
    # Two points at distance 2: ordered pairs (0,0), (0,1), (1,0), (1,1) have d^2 = 0, 4, 4, 0.
    assert embedding_spread(torch.tensor([[1.0, 0.0], [-1.0, 0.0]])) == pytest.approx(2.0)
    assert embedding_spread(np.ones((5, 3), dtype=np.float32)) == 0.0
    # Many points evenly on the unit circle: the mean of 2 - 2 cos over all pairs is 2.
    angles = torch.linspace(0, 2 * math.pi, 401)[:-1]
    circle = torch.stack([angles.cos(), angles.sin()], dim=1)
    assert embedding_spread(circle) == pytest.approx(2.0, abs=1e-5)


def test_embedding_spread_refuses_bad_input():
    with pytest.raises(ValueError, match="at least one"):
        embedding_spread(torch.empty(0, 2))
    with pytest.raises(ValueError):
        embedding_spread(torch.ones(3))
    with pytest.raises(ValueError):
        embedding_spread(torch.tensor([[float("nan"), 0.0]]))
