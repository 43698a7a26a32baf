"""Batch samplers: class-balanced P x K batches and plain shuffled batches.

Both yield lists of indices and work as ``batch_sampler`` of a torch DataLoader.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..checks import check_non_negative_int, check_positive_int
from .dataset import as_label_tensor


class ClassBalancedBatchSampler:
    """Batches of P classes with K samples each (the "P x K" sampler of Hermans et al. 2017).

    Each batch draws ``classes_per_batch`` distinct classes at random and then
    ``samples_per_class`` distinct samples of each (with replacement only when a class
    has fewer than K samples). Every batch therefore holds positive pairs, which the
    pair and triplet losses need. Works as ``batch_sampler`` of a torch DataLoader too.

    Args:
        labels: class id per sample (a data set's ``labels``).
        classes_per_batch: P.
        samples_per_class: K (at least 2 for losses that need positive pairs).
        num_batches: batches per pass; default ``len(labels) // (P * K)``, at least 1.
        seed: seed of the sampler's own generator (iterating twice gives new batches).
    """

    def __init__(
        self, labels, classes_per_batch: int, samples_per_class: int, num_batches: int | None = None, seed: int = 0
    ):
        labels = as_label_tensor(labels).numpy()
        if labels.size == 0:
            raise ValueError("labels are empty: a data set without samples gives no batch (is a split side empty?)")
        self.classes = np.unique(labels)
        self.classes_per_batch = check_positive_int("classes_per_batch", classes_per_batch)
        self.samples_per_class = check_positive_int("samples_per_class", samples_per_class)
        if self.classes_per_batch > self.classes.size:
            raise ValueError(
                f"classes_per_batch={classes_per_batch} but the labels hold only {self.classes.size} classes"
            )
        self.members = [np.flatnonzero(labels == c) for c in self.classes]
        self.batch_size = self.classes_per_batch * self.samples_per_class
        default_batches = max(len(labels) // self.batch_size, 1)
        self.num_batches = default_batches if num_batches is None else check_positive_int("num_batches", num_batches)
        self.rng = np.random.default_rng(check_non_negative_int("seed", seed))

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
    """Shuffled batches without class balance; every sample is seen once per pass.

    Args:
        num_samples: size of the data set (``len(dataset)``).
        batch_size: samples per batch, at most ``num_samples``.
        num_batches: batches per pass; default ``num_samples // batch_size``, at least 1.
        seed: seed of the sampler's own generator.
    """

    def __init__(self, num_samples: int, batch_size: int, num_batches: int | None = None, seed: int = 0):
        self.num_samples = check_positive_int("num_samples", num_samples)
        self.batch_size = check_positive_int("batch_size", batch_size)
        if self.batch_size > self.num_samples:
            raise ValueError(f"batch_size must be between 1 and num_samples={num_samples}, got {batch_size!r}")
        default_batches = max(self.num_samples // self.batch_size, 1)
        self.num_batches = default_batches if num_batches is None else check_positive_int("num_batches", num_batches)
        self.rng = np.random.default_rng(check_non_negative_int("seed", seed))
        self._order: list[int] = []

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[list[int]]:
        for _ in range(self.num_batches):
            if len(self._order) < self.batch_size:
                self._order.extend(self.rng.permutation(self.num_samples).tolist())
            batch, self._order = self._order[: self.batch_size], self._order[self.batch_size :]
            yield batch
