"""Checks of parameters shared by losses, miners and data: each raises a ValueError
that names the parameter and what was expected."""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import torch
from torch import Tensor


def _number(name: str, value, expected: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return float(value)


def check_finite(name: str, value) -> float:
    """``value`` as a float; raises unless it is a finite real number."""
    return _number(name, value, "a finite number")


def check_non_negative(name: str, value) -> float:
    """``value`` as a float; raises unless it is finite and >= 0 (margins, weights)."""
    number = _number(name, value, "a finite number >= 0")
    if number < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return number


def check_positive(name: str, value) -> float:
    """``value`` as a float; raises unless it is finite and > 0 (temperatures, scales)."""
    number = _number(name, value, "a positive finite number")
    if number <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return number


def check_integer(name: str, value, minimum: int | None = None) -> int:
    """``value`` as an int; raises unless it is an integer (Python or NumPy, not bool) >= ``minimum``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Integral):
        bound = "" if minimum is None else f" >= {minimum}"
        raise ValueError(f"{name} must be an integer{bound}, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_positive_int(name: str, value) -> int:
    """``value`` as an int; raises unless it is an integer >= 1 (sizes, counts, steps)."""
    return check_integer(name, value, minimum=1)


def check_non_negative_int(name: str, value) -> int:
    """``value`` as an int; raises unless it is an integer >= 0 (warm-up steps, offsets)."""
    return check_integer(name, value, minimum=0)


def check_finite_rows(tensor: Tensor, name: str = "embeddings") -> Tensor:
    """``tensor`` unchanged; raises a ValueError naming the rows that hold NaN or inf.

    A NaN in a batch turns every loss and every mined distance into NaN; this says where
    it came from instead.
    """
    # Fast path: a sum is finite only if every entry is (and is 5x cheaper than isfinite().all());
    # a sum that overflows on finite entries falls through to the exact check.
    if tensor.numel() == 0 or bool(torch.isfinite(tensor.detach().sum())):
        return tensor
    finite = torch.isfinite(tensor)
    if not bool(finite.all()):
        rows = (~finite.reshape(finite.shape[0], -1).all(dim=1)).nonzero().flatten().tolist() if tensor.dim() else []
        shown = ", ".join(map(str, rows[:10])) + (", ..." if len(rows) > 10 else "")
        raise ValueError(
            f"{name} contain NaN or inf in {len(rows)} of {tensor.shape[0] if tensor.dim() else 1} rows ({shown}); "
            "usual causes: a learning rate too large, a temperature too small, or float16 overflow"
        )
    return tensor


def check_choice(name: str, value, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def check_labels(labels, name: str = "labels") -> Tensor:
    """Class ids as a 1-D long tensor (a tensor stays on its device; lists and arrays are converted)."""
    if not isinstance(labels, Tensor):
        array = np.asarray(labels)
        if array.dtype == object:
            raise ValueError(f"{name} must be integer class ids, got objects of mixed types")
        labels = torch.from_numpy(array.copy()) if array.size else torch.empty(0, dtype=torch.long)
    if labels.dim() != 1:
        raise ValueError(
            f"{name} must have shape (n,), 1-D with one class id per sample, got shape {tuple(labels.shape)}"
        )
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"{name} must be integer class ids, got dtype {labels.dtype}")
    return labels.long()


def check_class_labels(labels, num_classes: int) -> Tensor:
    """Class ids in ``0 .. num_classes-1`` (for losses with one weight or proxy per class)."""
    labels = check_labels(labels)
    if labels.numel() > 0:
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= num_classes:
            raise ValueError(
                f"labels must be class ids in 0..{num_classes - 1} (num_classes={num_classes}), "
                f"got values from {low} to {high}"
            )
    return labels


def check_embeddings(embeddings, name: str = "embeddings") -> Tensor:
    """A 2-D floating-point tensor ``(n, dim)``."""
    if not isinstance(embeddings, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape (n, dim), got {type(embeddings).__name__}")
    if embeddings.dim() != 2:
        raise ValueError(f"{name} must have shape (n, dim), got shape {tuple(embeddings.shape)}")
    if not embeddings.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {embeddings.dtype}")
    return check_finite_rows(embeddings, name)


def check_embeddings_and_labels(embeddings: Tensor, labels) -> Tensor:
    """Validate a batch and return the labels as a long tensor on the embeddings' device."""
    check_embeddings(embeddings)
    labels = check_labels(labels)
    if labels.shape[0] != embeddings.shape[0]:
        raise ValueError(
            f"embeddings and labels disagree on the batch size: {embeddings.shape[0]} embeddings, "
            f"{labels.shape[0]} labels"
        )
    return labels.to(device=embeddings.device)
