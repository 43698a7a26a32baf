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


class RateRecordingLoss(CentreLoss):
    """Records the learning rate each step trains with (the loss runs before that step's update)."""

    def __init__(self, num_classes, dim):
        super().__init__(num_classes, dim)
        self.optimizer, self.rates = None, []

    def compute_loss(self, embeddings, labels, indices_tuple):
        self.rates.append(self.optimizer.param_groups[0]["lr"])
        return super().compute_loss(embeddings, labels, indices_tuple)


def rates_and_losses(drop_with):
    """Train 7 SGD steps with drops by 10 after steps 2 and 5, by ``drop_with`` "scheduler" or "callback"."""
    seed_everything(0)
    model, loss_fn = MLPEmbedding(8, 2), RateRecordingLoss(4, 2)
    loss_fn.optimizer = optimizer = torch.optim.SGD([*model.parameters(), *loss_fn.parameters()], lr=0.05)
    if drop_with == "scheduler":
        scheduled = {"scheduler": torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[2, 5], gamma=0.1)}
    else:  # the temperature sweep's callback before fit took a scheduler

        def drop(step, history):
            if step in {2, 5}:
                for group in optimizer.param_groups:
                    group["lr"] *= 0.1

        scheduled = {"callbacks": [drop]}
    history = fit(model, loss_fn, blobs(), steps=7, optimizer=optimizer, device="cpu", progress=False, **scheduled)
    return loss_fn.rates, history.losses


def test_a_scheduler_steps_after_every_optimiser_step():
    rates, losses = rates_and_losses("scheduler")
    # After step 2 the rate drops, so step 3 is the first at 0.005; after step 5, step 6 is the first at 0.0005.
    assert rates == pytest.approx([0.05, 0.05, 0.005, 0.005, 0.005, 0.0005, 0.0005], rel=1e-12)
    # A callback multiplying the rate after the same steps gives the same rates and losses, bit for bit.
    assert (rates, losses) == rates_and_losses("callback")


def test_fit_refuses_a_scheduler_it_cannot_step():
    model, loss_fn, data = MLPEmbedding(8, 2), CentreLoss(4, 2), blobs()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    other = torch.optim.SGD(loss_fn.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="scheduler must be a torch.optim.lr_scheduler.LRScheduler, got SGD"):
        fit(model, loss_fn, data, steps=1, optimizer=optimizer, scheduler=other, progress=False)
    with pytest.raises(ValueError, match="needs the optimizer it was built on"):
        fit(model, loss_fn, data, steps=1, scheduler=torch.optim.lr_scheduler.StepLR(optimizer, 5), progress=False)
    with pytest.raises(ValueError, match="bound to another optimizer"):
        step_lr = torch.optim.lr_scheduler.StepLR(optimizer, 5)
        fit(model, loss_fn, data, steps=1, optimizer=other, scheduler=step_lr, progress=False)
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
        fit(model, loss_fn, data, steps=1, optimizer=optimizer, scheduler=plateau, progress=False)
