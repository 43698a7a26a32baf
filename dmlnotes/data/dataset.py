"""Labelled data sets.

A data set here is anything with a 1-D ``labels`` tensor and a ``get_batch(indices)``
method returning ``(inputs, labels)``; :class:`InMemoryDataset` holds tensors,
:class:`~dmlnotes.data.images.ImageFileDataset` reads image files on demand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from ..checks import check_labels


def as_label_tensor(labels, name: str = "labels") -> Tensor:
    """Labels as a 1-D long CPU tensor; a ValueError names what was expected otherwise."""
    if hasattr(labels, "get_batch"):  # np.asarray would turn a data set into one object
        raise ValueError(f"{name} must hold one class id per sample, got a data set ({labels!r}); pass its .labels")
    return check_labels(labels.detach().cpu() if isinstance(labels, Tensor) else labels, name)


def check_class_ids(labels: Tensor, class_names: Sequence[str], name: str = "labels") -> None:
    """Raise unless every label is a class id ``0 ..`` with a name (when names are given).

    A negative id would pick the last class's name (Python indexing) after a split.
    """
    if not len(labels):
        return
    low, high = int(labels.min()), int(labels.max())
    if low < 0:
        raise ValueError(f"{name} must be class ids >= 0, got {low} (at sample {int(torch.argmin(labels))})")
    if len(class_names) and high >= len(class_names):
        raise ValueError(
            f"{name} must be class ids 0 .. {len(class_names) - 1}, one per class name ({len(class_names)} given), "
            f"got {high}"
        )


def subset_labels(labels: Tensor, class_names: list[str], relabel: bool) -> tuple[Tensor, list[str]]:
    """A subset's labels and class names; with ``relabel`` its classes become ``0 .. C-1`` in sorted order."""
    if not relabel:
        return labels, list(class_names)
    kept, labels = torch.unique(labels, return_inverse=True)
    return labels, [class_names[int(c)] for c in kept] if class_names else []


def check_dataset(dataset, name: str = "dataset"):
    """``dataset`` unchanged; raises unless it has ``labels``, ``get_batch`` and ``subset`` (what splits use)."""
    if not all(hasattr(dataset, attribute) for attribute in ("labels", "get_batch", "subset")):
        raise ValueError(
            f"{name} must be a data set with labels, get_batch() and subset() (InMemoryDataset, ImageFileDataset or "
            f"what the dmlnotes.data loaders return), got {type(dataset).__name__}"
        )
    return dataset


@dataclass
class InMemoryDataset:
    """Inputs and labels held as tensors.

    Attributes:
        inputs: float tensor ``(n, ...)``: flattened features or ``(n, 1, H, W)`` images.
        labels: long tensor ``(n,)`` of class ids ``0 .. num_classes - 1``.
        class_names: one readable name per class id.
        name: a short description shown in plots and tables.
    """

    inputs: Tensor
    labels: Tensor
    class_names: list[str] = field(default_factory=list)
    name: str = "data"

    def __post_init__(self):
        if not isinstance(self.inputs, Tensor):
            self.inputs = torch.as_tensor(np.asarray(self.inputs), dtype=torch.float32)
        self.labels = as_label_tensor(self.labels)
        check_class_ids(self.labels, self.class_names)
        if self.inputs.shape[0] != self.labels.shape[0]:
            raise ValueError(
                "inputs and labels disagree on the number of samples: "
                f"{self.inputs.shape[0]} and {self.labels.shape[0]}"
            )
        if not self.class_names:
            self.class_names = [str(c) for c in range(int(self.labels.max()) + 1 if len(self.labels) else 0)]

    def __len__(self) -> int:
        return self.labels.shape[0]

    def __repr__(self) -> str:
        return (
            f"InMemoryDataset(name={self.name!r}, samples={len(self)}, classes={self.num_classes}, "
            f"input_shape={tuple(self.inputs.shape[1:])})"
        )

    @property
    def num_classes(self) -> int:
        return int(torch.unique(self.labels).numel())

    def get_batch(self, indices: Sequence[int] | Tensor) -> tuple[Tensor, Tensor]:
        index = torch.as_tensor(indices, dtype=torch.long)
        return self.inputs[index], self.labels[index]

    def subset(
        self, indices: Sequence[int] | Tensor, relabel: bool = False, name: str | None = None
    ) -> InMemoryDataset:
        """The samples at ``indices``; with ``relabel`` the classes become ``0 .. C-1`` in sorted order."""
        index = torch.as_tensor(indices, dtype=torch.long)
        labels, names = subset_labels(self.labels[index], self.class_names, relabel)
        return InMemoryDataset(self.inputs[index], labels, names, name or self.name)
