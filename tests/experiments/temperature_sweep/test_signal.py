"""The training signal: closed-form per-sample gradients against autograd, batch statistics, the hard share."""

import numpy as np
import pytest
import torch
from torch import nn

from dmlnotes.data import InMemoryDataset
from dmlnotes.experiments import temperature_sweep as ts
from dmlnotes.losses import NormSoftmaxLoss


def test_training_signal_matches_autograd_and_a_loop():
    """Closed-form per-sample gradients (eq. (23), and through the normalisation) equal autograd's."""
    torch.manual_seed(0)
    model = nn.Linear(5, 4)
    loss_fn = NormSoftmaxLoss(3, 4, temperature=0.1)
    inputs, labels = torch.randn(6, 5), torch.tensor([0, 1, 2, 0, 1, 2])
    signal = ts.training_signal(model, loss_fn, InMemoryDataset(inputs, labels), [[0, 1, 2], [3, 4, 5]], device="cpu")
    embeddings = model(inputs).detach().requires_grad_(True)
    torch.nn.functional.cross_entropy(loss_fn.logits(embeddings), labels, reduction="sum").backward()
    assert np.allclose(signal.embedding_gradient_norm, embeddings.grad.norm(dim=1).numpy(), atol=1e-5)
    # Eq. (23): the logits z_m = w_m . f / T as a function of f, with normalised class weights.
    features = torch.nn.functional.normalize(embeddings.detach(), dim=1).requires_grad_(True)
    weights = torch.nn.functional.normalize(loss_fn.weight.detach(), dim=1)
    torch.nn.functional.cross_entropy(features @ weights.T / 0.1, labels, reduction="sum").backward()
    assert np.allclose(signal.feature_gradient_norm, features.grad.norm(dim=1).numpy(), rtol=1e-5, atol=1e-5)
    probabilities = loss_fn.class_probabilities(embeddings).detach()
    for i, y in enumerate(labels.tolist()):
        wrong = [probabilities[i, c].item() for c in range(3) if c != y]
        assert signal.p_true[i] == pytest.approx(probabilities[i, y].item(), abs=1e-6)
        assert signal.top_negative_share[i] == pytest.approx(max(wrong) / sum(wrong), rel=1e-5)
        assert signal.correct[i] == (probabilities[i].argmax().item() == y)


def test_training_signal_uses_batch_statistics_but_leaves_running_statistics_alone():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4))
    model.eval()
    loss_fn = NormSoftmaxLoss(3, 4, temperature=0.1)
    data = InMemoryDataset(3 + 2 * torch.randn(6, 5), torch.tensor([0, 1, 2, 0, 1, 2]))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    p_true = ts.training_signal(model, loss_fn, data, [[0, 1, 2, 3, 4, 5]], device="cpu").p_true
    assert not model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    model.train()
    expected = loss_fn.class_probabilities(model(data.inputs)).detach()[torch.arange(6), data.labels]
    assert np.allclose(p_true, expected.numpy(), atol=1e-6)


def test_hard_share_by_hand():
    p_true = np.array([0.9, 0.1, 0.5, 0.8, 0.2, 0.7, 0.6, 0.3, 0.95, 0.4])
    norms = np.array([1.0, 6.0, 1.0, 1.0, 2.0, 1.0, 1.0, 1.0, 1.0, 5.0])
    # The hardest 10 % is the single sample with p = 0.1: 6 of the total 20.
    assert ts.hard_share(p_true, norms) == pytest.approx(6 / 20)
    # The hardest 20 %: p = 0.1 and 0.2, 8 of 20.
    assert ts.hard_share(p_true, norms, fraction=0.2) == pytest.approx(8 / 20)
    with pytest.raises(ValueError):
        ts.hard_share(p_true, norms[:3])
