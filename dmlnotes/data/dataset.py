"""Labelled data sets, class-disjoint and stratified splits, and the P x K batch sampler.

A data set here is anything with a 1-D ``labels`` tensor and a ``get_batch(indices)``
method returning ``(inputs, labels)``; :class:`InMemoryDataset` holds tensors,
:class:`~dmlnotes.data.images.ImageFileDataset` reads image files on demand.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor


def as_label_tensor(labels, name: str = "labels") -> Tensor:
    """Labels as a 1-D long tensor; a ValueError names what was expected otherwise."""
    if isinstance(labels, Tensor):
        tensor = labels.detach().cpu()
    else:
        array = np.asarray(labels)
        if array.dtype == object:
            raise ValueError(f"{name} must be integer class ids, got objects of mixed types")
        tensor = torch.from_numpy(array.copy()) if array.size else torch.empty(0, dtype=torch.long)
    if tensor.dim() != 1:
        raise ValueError(f"{name} must be 1-D (one class id per sample), got shape {tuple(tensor.shape)}")
    if tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool:
        raise ValueError(f"{name} must be integer class ids, got dtype {tensor.dtype}")
    return tensor.long()


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


def class_disjoint_split(dataset, train_fraction: float = 0.5, relabel: bool = True):
    """Open-set split: the first classes (sorted by id) train, the rest test.

    This is the protocol of CUB-200-2011 in metric learning (classes 1-100 train,
    101-200 test): no test class is ever seen in training. With ``relabel`` each side's
    classes are renumbered ``0 .. C-1`` so a classifier or proxy loss can use them.
    """
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must lie strictly between 0 and 1, got {train_fraction}")
    classes = torch.unique(dataset.labels)
    if classes.numel() < 2:
        raise ValueError(f"a class-disjoint split needs at least 2 classes, got {classes.numel()}")
    cut = min(max(int(round(classes.numel() * train_fraction)), 1), classes.numel() - 1)
    is_train = torch.isin(dataset.labels, classes[:cut])
    train_idx = torch.nonzero(is_train).flatten()
    test_idx = torch.nonzero(~is_train).flatten()
    return (
        dataset.subset(train_idx, relabel=relabel, name=f"{dataset.name} (train classes)"),
        dataset.subset(test_idx, relabel=relabel, name=f"{dataset.name} (test classes)"),
    )


def stratified_split(dataset, test_fraction: float = 0.3, seed: int = 0):
    """Closed-set split: every class appears on both sides in the same proportion."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction}")
    rng = np.random.default_rng(seed)
    labels = dataset.labels.numpy()
    train_idx, test_idx = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        if members.size < 2:
            raise ValueError(f"class {label} has {members.size} sample; a stratified split needs at least 2 per class")
        n_test = min(max(int(round(members.size * test_fraction)), 1), members.size - 1)
        test_idx.extend(members[:n_test])
        train_idx.extend(members[n_test:])
    return (
        dataset.subset(np.sort(train_idx), name=f"{dataset.name} (train)"),
        dataset.subset(np.sort(test_idx), name=f"{dataset.name} (test)"),
    )


class ClassBalancedBatchSampler:
    """Batches of P classes with K samples each (the "P x K" sampler of Hermans et al. 2017).

    Each batch draws ``classes_per_batch`` distinct classes at random and then
    ``samples_per_class`` distinct samples of each (with replacement only when a class
    has fewer than K samples). Every batch therefore holds positive pairs, which the
    pair and triplet losses need. Works as ``batch_sampler`` of a torch DataLoader too.

    Args:
        labels: class id per sample.
        classes_per_batch: P.
        samples_per_class: K (at least 2 for losses that need positive pairs).
        num_batches: batches per pass; default ``len(labels) // (P * K)``.
        seed: seed of the sampler's own generator (iterating twice gives new batches).
    """

    def __init__(self, labels, classes_per_batch: int, samples_per_class: int, num_batches: int | None = None, seed: int = 0):
        labels = as_label_tensor(labels).numpy()
        self.classes = np.unique(labels)
        if not isinstance(classes_per_batch, (int, np.integer)) or classes_per_batch < 1:
            raise ValueError(f"classes_per_batch must be a positive integer, got {classes_per_batch!r}")
        if not isinstance(samples_per_class, (int, np.integer)) or samples_per_class < 1:
            raise ValueError(f"samples_per_class must be a positive integer, got {samples_per_class!r}")
        if classes_per_batch > self.classes.size:
            raise ValueError(f"classes_per_batch={classes_per_batch} but the labels hold only {self.classes.size} classes")
        self.members = [np.flatnonzero(labels == c) for c in self.classes]
        self.classes_per_batch = int(classes_per_batch)
        self.samples_per_class = int(samples_per_class)
        self.batch_size = self.classes_per_batch * self.samples_per_class
        self.num_batches = int(num_batches) if num_batches is not None else max(len(labels) // self.batch_size, 1)
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[list[int]]:
        for _ in range(self.num_batches):
            yield self.sample_batch()

    def sample_batch(self) -> list[int]:
        chosen = self.rng.choice(len(self.members), size=self.classes_per_batch, replace=False)
        batch = []
        for c in chosen:
            members = self.members[c]
            replace = members.size < self.samples_per_class
            batch.extend(self.rng.choice(members, size=self.samples_per_class, replace=replace).tolist())
        return batch


class RandomBatchSampler:
    """Shuffled batches without class balance; every sample is seen once per pass."""

    def __init__(self, num_samples: int, batch_size: int, num_batches: int | None = None, seed: int = 0):
        if batch_size < 1 or batch_size > num_samples:
            raise ValueError(f"batch_size must be between 1 and num_samples={num_samples}, got {batch_size!r}")
        self.num_samples = int(num_samples)
        self.batch_size = int(batch_size)
        self.num_batches = int(num_batches) if num_batches is not None else max(self.num_samples // self.batch_size, 1)
        self.rng = np.random.default_rng(seed)
        self._order: list[int] = []

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[list[int]]:
        for _ in range(self.num_batches):
            if len(self._order) < self.batch_size:
                self._order.extend(self.rng.permutation(self.num_samples).tolist())
            batch, self._order = self._order[: self.batch_size], self._order[self.batch_size :]
            yield batch
