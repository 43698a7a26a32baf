import numpy as np
import pytest
import torch

from dmlnotes.device import DEVICE_ENV_VAR, get_device, seed_everything


def test_environment_variable_overrides_the_automatic_choice(monkeypatch):
    monkeypatch.setenv(DEVICE_ENV_VAR, "cpu")
    assert get_device() == torch.device("cpu")


def test_argument_overrides_the_environment(monkeypatch):
    monkeypatch.setenv(DEVICE_ENV_VAR, "cuda")
    assert get_device("cpu") == torch.device("cpu")


def test_automatic_choice_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.delenv(DEVICE_ENV_VAR, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("dmlnotes.device._mps_available", lambda: False)
    assert get_device() == torch.device("cpu")
    monkeypatch.setattr("dmlnotes.device._mps_available", lambda: True)
    assert get_device() == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_device() == torch.device("cuda")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_requesting_missing_cuda_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(DEVICE_ENV_VAR, "cuda")
    with pytest.raises(ValueError, match="CUDA is not available"):
        get_device()


def test_seeding_makes_python_numpy_and_torch_repeat():
    import random

    seed_everything(7)
    first = (random.random(), np.random.rand(), torch.rand(3))  # noqa: NPY002 (the legacy generator is the point)
    seed_everything(7)
    second = (random.random(), np.random.rand(), torch.rand(3))  # noqa: NPY002
    assert first[0] == second[0] and first[1] == second[1]
    assert torch.equal(first[2], second[2])
    seed_everything(8)
    assert not torch.equal(torch.rand(3), first[2])


def test_seed_must_be_an_integer():
    with pytest.raises(ValueError, match="integer"):
        seed_everything(1.5)
