"""scikit-learn's bundled handwritten digits: 1,797 images of 8 x 8 pixels, 10 classes."""

from __future__ import annotations

import numpy as np
import torch

from .dataset import InMemoryDataset


def load_digits(flatten: bool = True) -> InMemoryDataset:
    """The UCI optical digits that ship with scikit-learn (no download).

    Args:
        flatten: inputs of shape ``(n, 64)`` (for an MLP) instead of ``(n, 1, 8, 8)``.

    Pixel values are scaled from 0-16 to [0, 1].
    """
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = torch.from_numpy((bunch.images / 16.0).astype(np.float32))
    inputs = images.reshape(len(images), -1) if flatten else images.unsqueeze(1)
    return InMemoryDataset(inputs, torch.from_numpy(bunch.target), [str(d) for d in range(10)], name="digits")
