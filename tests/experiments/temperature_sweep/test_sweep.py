"""Training the sweep: both setups end to end on tiny data, the learning-rate drops, bad input."""

import dataclasses

import numpy as np
import pytest
import torch

from dmlnotes.data import DatasetNotFoundError
from dmlnotes.experiments import temperature_sweep as ts
from dmlnotes.experiments.temperature_sweep import sweep
from loss_testing import tiny_images

TINY_GLYPHS = dataclasses.replace(
    ts.GLYPHS,
    embedding_dim=8,
    steps=4,
    width=4,
    classes_per_batch=4,
    samples_per_class=2,
    diagnostic_samples=20,
)
TINY_CUB = dataclasses.replace(
    ts.CUB,
    embedding_dim=3,
    steps=2,
    warmup_steps=1,
    lr_drop_steps=(1,),
    classes_per_batch=2,
    samples_per_class=2,
    image_size=16,
    eval_batch_size=4,
    diagnostic_samples=6,
)


def test_cub_path_runs_end_to_end_on_a_tiny_folder_on_the_cpu(cub_folder, tiny_backbone_factory, monkeypatch):
    optimised = []
    real_sgd = sweep._sgd
    monkeypatch.setattr(
        sweep, "_sgd", lambda params, config: optimised.append(list(params)) or real_sgd(optimised[-1], config)
    )
    result = ts.run_sweep(
        [0.05, 1.0], [0], TINY_CUB, root=cub_folder, model_factory=tiny_backbone_factory, device="cpu", allow_cpu=True
    )
    assert result.setup == "cub" and result.temperatures == [0.05, 1.0] and result.seeds == [0]
    for run in result.runs:
        assert 0.0 <= run.recall_at_1 <= 1.0 and run.finite
        assert len(run.losses) == TINY_CUB.warmup_steps + TINY_CUB.steps
        assert run.p_true.shape == (8,) and np.all((run.p_true > 0) & (run.p_true < 1))  # 2 batches of 2 x 2 >= 6
        assert 0.0 < run.hard_share <= 1.0 and 0.5 <= run.top_negative_share <= 1.0  # 2 wrong classes
    # Per run: a warm-up optimiser over the projection and the class weights only, then one over everything.
    assert len(optimised) == 4
    warmup, full = optimised[0], optimised[1]
    assert len(warmup) == 2 and warmup[0].shape == (3, 4) and warmup[1].shape == (3, 3)  # projection, class weights
    assert len(full) > len(warmup)


def test_the_rate_drops_after_the_drop_steps_counted_after_the_warm_up(monkeypatch):
    rates = []  # per fit call (warm-up, then training): the rate each step trains with, read as its loss runs
    real_fit = sweep.fit

    def recording_fit(model, loss_fn, *args, optimizer, **kwargs):
        rates.append([])
        forward = loss_fn.forward

        def recorded_forward(*forward_args):
            rates[-1].append(optimizer.param_groups[0]["lr"])
            return forward(*forward_args)

        loss_fn.forward = recorded_forward
        try:
            return real_fit(model, loss_fn, *args, optimizer=optimizer, **kwargs)
        finally:
            del loss_fn.forward

    monkeypatch.setattr(sweep, "fit", recording_fit)
    config = dataclasses.replace(TINY_GLYPHS, steps=6, warmup_steps=2, lr=0.01, lr_drop_steps=(2, 5))
    data = (tiny_images(8, 4, seed=0), tiny_images(4, 3, seed=1))
    run, _, _ = ts.train_one(config, 0.1, 0, *data, ts.default_model_factory(config), torch.device("cpu"))
    assert len(run.losses) == 8
    assert rates[0] == [0.01, 0.01]  # the warm-up keeps its rate
    assert rates[1] == pytest.approx([0.01, 0.01, 0.001, 0.001, 0.001, 0.0001], rel=1e-12)


def test_cub_without_data_says_where_to_get_it(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="CUB-200-2011 was not found"):
        ts.run_sweep([0.05], [0], "cub", root=tmp_path / "nowhere", device="cpu")


def test_cub_without_a_gpu_says_so(cub_folder, tiny_backbone_factory):
    with pytest.raises(RuntimeError, match="needs a CUDA GPU"):
        ts.run_sweep([0.05], [0], TINY_CUB, root=cub_folder, model_factory=tiny_backbone_factory, device="cpu")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"temperatures": [0.05, 0.0]}, "temperature must be a positive"),
        ({"temperatures": [-1.0]}, "temperature must be a positive"),
        ({"temperatures": [float("nan")]}, "temperature must be a positive"),
        ({"temperatures": []}, "at least one temperature"),
        ({"seeds": []}, "at least one integer seed"),
        ({"seeds": [0.5]}, "seeds must be integers"),
        ({"setup": "imagenet"}, "setup must be one of"),
    ],
)
def test_bad_input_raises_value_error(kwargs, message):
    arguments = {
        "temperatures": [0.05],
        "seeds": [0],
        "setup": "glyphs",
        "data": (tiny_images(8, 4, 0), tiny_images(4, 3, 1)),
    }
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        ts.run_sweep(**arguments)


def test_the_sweep_restores_torch_threads():
    before = torch.get_num_threads()
    data = (tiny_images(8, 4, seed=0), tiny_images(4, 3, seed=1))
    ts.run_sweep([0.1], [0], dataclasses.replace(TINY_GLYPHS, steps=1, cpu_threads=1), data=data, device="cpu")
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="cpu_threads"):
        dataclasses.replace(TINY_GLYPHS, cpu_threads=0)


def test_same_seed_same_result_on_the_cpu():
    data = (tiny_images(8, 4, seed=0), tiny_images(4, 3, seed=1))
    first, second = (ts.run_sweep([0.01, 0.5], [3], TINY_GLYPHS, data=data, device="cpu") for _ in range(2))
    for a, b in zip(first.runs, second.runs):
        assert a.losses == b.losses and a.recall_at_1 == b.recall_at_1
        for name in ("p_true", "embedding_gradient_norm", "feature_gradient_norm", "top_negative_share"):
            assert np.array_equal(getattr(a.signal, name), getattr(b.signal, name))
    # Different temperatures train differently.
    assert first.runs[0].losses != first.runs[1].losses


def test_keep_models_keeps_the_trained_network_and_loss():
    data = (tiny_images(8, 4, seed=0), tiny_images(4, 3, seed=1))
    kept = ts.run_sweep([0.1, 0.5], [0], TINY_GLYPHS, data=data, device="cpu", keep_models=True)
    plain = ts.run_sweep([0.1, 0.5], [0], TINY_GLYPHS, data=data, device="cpu")
    assert all(run.model is None and run.loss_fn is None for run in plain.runs)
    for run, same in zip(kept.runs, plain.runs):
        assert run.loss_fn.temperature == run.temperature and run.losses == same.losses
        # Measuring the kept network again gives the training signal the sweep recorded.
        batches = ts.diagnostic_batches(data[0], TINY_GLYPHS)
        with ts.cpu_threads(TINY_GLYPHS.cpu_threads):  # the thread count the sweep measured with
            again = ts.training_signal(run.model, run.loss_fn, data[0], batches, device="cpu")
        assert np.array_equal(again.p_true, run.signal.p_true)
        assert np.array_equal(again.embedding_gradient_norm, run.signal.embedding_gradient_norm)
    assert "model" not in kept.runs[0].summary()
