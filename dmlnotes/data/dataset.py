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
    return check_labels(labels.detach().cpu() if isinstance(labels, Tensor) else labels, name)


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
        if self.inputs.shape[0] != self.labels.shape[0]:
            raise ValueError(
                f"inputs and labels disagree on the number of samples: {self.inputs.shape[0]} and {self.labels.shape[0]}"
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

    def subset(self, indices: Sequence[int] | Tensor, relabel: bool = False, name: str | None = None) -> "InMemoryDataset":
        """The samples at ``indices``; with ``relabel`` the classes become ``0 .. C-1`` in sorted order."""
        index = torch.as_tensor(indices, dtype=torch.long)
        labels = self.labels[index]
        names = self.class_names
        if relabel:
            kept, labels = torch.unique(labels, return_inverse=True)
            names = [self.class_names[int(c)] for c in kept] if self.class_names else []
        return InMemoryDataset(self.inputs[index], labels, list(names), name or self.name)
