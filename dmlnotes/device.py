"""Where tensors live, and how to make a run repeatable.

``get_device`` picks CUDA, then Apple's MPS, then the CPU. Set the environment
variable ``DMLNOTES_DEVICE`` (for example ``cpu`` or ``cuda:1``) to override it.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

DEVICE_ENV_VAR = "DMLNOTES_DEVICE"


def get_device(preferred: str | torch.device | None = None) -> torch.device:
    """Return the device to compute on.

    Order of precedence: the ``preferred`` argument, the ``DMLNOTES_DEVICE``
    environment variable, then the first available of cuda, mps and cpu.
    """
    choice = preferred if preferred is not None else os.environ.get(DEVICE_ENV_VAR)
    if choice:
        device = torch.device(choice)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {str(device)!r} was requested but CUDA is not available here")
        if device.type == "mps" and not _mps_available():
            raise ValueError("device 'mps' was requested but MPS is not available here")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices) and return a seeded CPU generator.

    On the CPU, a run seeded this way repeats exactly; on a GPU some kernels stay
    nondeterministic unless ``torch.use_deterministic_algorithms(True)`` is set.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)  # noqa: NPY002 (the legacy global generator is what user code draws from)
    torch.manual_seed(int(seed))
    return torch.Generator().manual_seed(int(seed))
