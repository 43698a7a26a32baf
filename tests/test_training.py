import pytest
import torch
from torch import nn

from dmlnotes.data import InMemoryDataset, RandomBatchSampler
from dmlnotes.device import seed_everything
from dmlnotes.losses.base import LossTerms, MetricLoss
from dmlnotes.models import MLPEmbedding
from dmlnotes.training import embed, fit


class CentreLoss(MetricLoss):
    """Test loss with a parameter: squared distance of each embedding to its class's learned centre."""

    def __init__(self, num_classes, dim):
        super().__init__()
        self.centres = nn.Parameter(torch.ones(num_classes, dim))

    def compute_loss(self, embeddings, labels, indices_tuple):
        terms = ((embeddings - self.centres[labels]) ** 2).sum(dim=1)
        return LossTerms(terms)


def blobs(num_classes=4, per_class=20):
    torch.manual_seed(0)
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    inputs = torch.randn(num_classes, 8)[labels] * 3 + torch.randn(len(labels), 8)
    return InMemoryDataset(inputs, labels)


def test_fit_lowers_the_loss_and_trains_the_loss_parameters():
    seed_everything(0)
    data = blobs()
    model, loss_fn = MLPEmbedding(8, 2), CentreLoss(4, 2)
    before = loss_fn.centres.detach().clone()
    history = fit(model, loss_fn, data, steps=60, lr=1e-2, device="cpu", progress=False)
    assert history.steps == 60 and len(history.stats) == 60
    assert sum(history.losses[-10:]) < 0.5 * sum(history.losses[:10])
    assert not torch.equal(before, loss_fn.centres.detach())
    assert history.seconds > 0


def test_fit_is_repeatable_with_a_seed():
    runs = []
    for _ in range(2):
        seed_everything(3)
        runs.append(fit(MLPEmbedding(8, 2), CentreLoss(4, 2), blobs(), steps=5, device="cpu", progress=False).losses)
    assert runs[0] == runs[1]


def test_snapshots_before_every_n_steps_and_at_the_end():
    data = blobs()
    history = fit(
        MLPEmbedding(8, 2),
        CentreLoss(4, 2),
        data,
        steps=25,
        snapshot_every=10,
        snapshot_inputs=data.inputs[:12],
        device="cpu",
        progress=False,
    )
    assert [s.step for s in history.snapshots] == [0, 10, 20, 25]
    assert history.snapshots[0].embeddings.shape == (12, 2)
    assert not (history.snapshots[0].embeddings == history.snapshots[-1].embeddings).all()


def test_epochs_follow_the_sampler_and_callbacks_see_every_step():
    data = blobs()
    seen = []
    sampler = RandomBatchSampler(len(data), batch_size=16)
    history = fit(
        MLPEmbedding(8, 2),
        CentreLoss(4, 2),
        data,
        batch_sampler=sampler,
        epochs=2,
        callbacks=[lambda step, h: seen.append((step, h.steps))],
        device="cpu",
        progress=False,
    )
    assert history.steps == 2 * len(sampler) == 10
    assert seen == [(s, s) for s in range(1, 11)]


def test_miner_output_reaches_the_loss():
    calls = []

    class RecordingLoss(CentreLoss):
        def compute_loss(self, embeddings, labels, indices_tuple):
            calls.append(indices_tuple)
            return super().compute_loss(embeddings, labels, indices_tuple)

    def miner(embeddings, labels):
        return (torch.tensor([0]), torch.tensor([1]), torch.tensor([2]))

    fit(MLPEmbedding(8, 2), RecordingLoss(4, 2), blobs(), miner=miner, steps=2, device="cpu", progress=False)
    assert len(calls) == 2 and calls[0][2].tolist() == [2]


def test_fit_rejects_bad_arguments():
    data = blobs()
    with pytest.raises(ValueError, match="epochs or steps"):
        fit(MLPEmbedding(8, 2), CentreLoss(4, 2), data, epochs=1, steps=3, progress=False)
    with pytest.raises(ValueError, match="snapshot_inputs"):
        fit(MLPEmbedding(8, 2), CentreLoss(4, 2), data, steps=3, snapshot_every=1, progress=False)
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        fit(MLPEmbedding(8, 2), CentreLoss(4, 2), data, steps=0, progress=False)


def test_embed_uses_eval_mode_and_restores_training_mode():
    model = nn.Sequential(nn.Linear(8, 4), nn.Dropout(0.9))
    model.train()
    x = torch.randn(50, 8)
    first, second = embed(model, x, batch_size=7), embed(model, x)
    assert torch.allclose(first, second, atol=1e-6)  # dropout off in eval mode; chunking changes nothing
    assert model.training
    data = blobs()
    assert embed(model, data).shape == (len(data), 4)


def test_fit_stops_at_the_first_non_finite_step_and_names_it():
    data = blobs()

    class BlowsUpAt3(MetricLoss):
        def __init__(self):
            super().__init__()
            self.calls = 0

        def compute_loss(self, embeddings, labels, indices_tuple):
            self.calls += 1
            terms = (embeddings**2).sum(dim=1) * (float("inf") if self.calls == 3 else 1.0)
            return LossTerms(terms)

    seed_everything(0)
    model = MLPEmbedding(8, 2)
    with pytest.raises(FloatingPointError, match="the loss became NaN or infinite at step 3 of 10.*learning rate"):
        fit(model, BlowsUpAt3(), data, steps=10, device="cpu", progress=False)

    class NaNModel(nn.Module):
        def forward(self, inputs):
            out = inputs[:, :2].clone()
            out[0, 0] = float("nan")
            return out

    nan_model = NaNModel()
    nan_model.p = nn.Parameter(torch.zeros(1))  # fit needs a parameter to optimise
    with pytest.raises(FloatingPointError, match="the model's embeddings became NaN or infinite at step 1"):
        fit(nan_model, CentreLoss(4, 2), data, steps=5, device="cpu", progress=False)
