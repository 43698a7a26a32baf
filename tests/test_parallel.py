import dataclasses
import os

import pytest
import torch

from dmlnotes.experiments import temperature_sweep as ts
from dmlnotes.parallel import WORKERS_ENV_VAR, available_cores, default_workers, run_jobs
from loss_testing import tiny_images


def seeded_training(seed: int, steps: int) -> tuple[int, list[float]]:
    """A tiny seeded regression: its losses depend on every random draw and every step."""
    torch.manual_seed(seed)
    model = torch.nn.Linear(5, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    inputs, targets = torch.randn(32, 5), torch.randn(32, 1)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(inputs), targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return os.getpid(), losses


def test_workers_give_the_same_results_in_the_same_order():
    jobs = [(seed, 5) for seed in (3, 1, 2)]
    here = run_jobs(seeded_training, jobs, workers=1)
    there = run_jobs(seeded_training, jobs, workers=2)
    assert [losses for _, losses in there] == [losses for _, losses in here]
    assert {pid for pid, _ in here} == {os.getpid()}
    assert os.getpid() not in {pid for pid, _ in there}  # they really ran elsewhere


def test_a_sweep_does_not_depend_on_the_workers():
    # Sweep runs are single-threaded wherever they run (GLYPHS.cpu_threads == 1), so a
    # worker process computes exactly what this process computes.
    train, test = tiny_images(32, 4, seed=0), tiny_images(6, 3, seed=1)
    config = dataclasses.replace(
        ts.GLYPHS, embedding_dim=8, steps=4, width=4, classes_per_batch=4, samples_per_class=2, diagnostic_samples=20
    )
    assert config.cpu_threads == 1
    sweeps = [
        ts.run_sweep([0.1, 1.0], [0], config, data=(train, test), device="cpu", workers=workers) for workers in (1, 2)
    ]
    assert [(r.temperature, r.recall_at_1, r.losses) for r in sweeps[0].runs] == [
        (r.temperature, r.recall_at_1, r.losses) for r in sweeps[1].runs
    ]


def test_default_workers(monkeypatch):
    monkeypatch.delenv(WORKERS_ENV_VAR)
    assert default_workers() == default_workers("cpu") == available_cores() >= 1
    assert default_workers("cuda") == 1  # one process owns the GPU
    monkeypatch.setenv(WORKERS_ENV_VAR, "3")
    assert default_workers("cpu") == default_workers("cuda") == 3


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_a_bad_worker_setting_is_named(monkeypatch, value):
    monkeypatch.setenv(WORKERS_ENV_VAR, value)
    with pytest.raises(ValueError, match=WORKERS_ENV_VAR):
        default_workers()


@pytest.mark.parametrize("workers", [0, 1.5, True])
def test_bad_workers_are_refused(workers):
    with pytest.raises(ValueError, match="workers must be an integer >= 1"):
        run_jobs(seeded_training, [(0, 1)], workers=workers)
