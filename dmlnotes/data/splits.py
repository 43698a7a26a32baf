"""Splits of a labelled data set: class-disjoint (open set) and stratified (closed set).

Both take any data set of :mod:`dmlnotes.data` (``InMemoryDataset`` from the digits and
glyphs loaders, ``ImageFileDataset`` from the CUB and Omniglot loaders) and return two
data sets of the same type.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..checks import check_finite, check_non_negative_int
from .dataset import check_dataset


def _check_fraction(name: str, value) -> float:
    fraction = check_finite(name, value)
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {value!r}")
    return fraction


def class_disjoint_split(dataset, train_fraction: float = 0.5, relabel: bool = True):
    """Open-set split: the first classes (sorted by id) train, the rest test.

    This is the protocol of CUB-200-2011 in metric learning (classes 1-100 train,
    101-200 test): no test class is ever seen in training. With ``relabel`` each side's
    classes are renumbered ``0 .. C-1`` so a classifier or proxy loss can use them.
    """
    check_dataset(dataset)
    train_fraction = _check_fraction("train_fraction", train_fraction)
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
    """Closed-set split: every class appears on both sides in about the same proportion.

    scikit-learn's ``train_test_split(..., stratify=labels, random_state=seed)``: the test
    side holds ``ceil(test_fraction * n)`` samples, shared among the classes in proportion
    to their sizes. ``seed`` alone fixes the split (the same seed gives the same split
    whatever the global torch or numpy seeds); each side keeps the data set's order.

    Raises a ValueError when a class cannot be on both sides: it has a single sample,
    or ``test_fraction`` is too small or too large for the number of classes.
    """
    from sklearn.model_selection import train_test_split

    check_dataset(dataset)
    test_fraction = _check_fraction("test_fraction", test_fraction)
    seed = check_non_negative_int("seed", seed)
    labels = dataset.labels.numpy()
    classes, counts = np.unique(labels, return_counts=True)
    if not classes.size:
        raise ValueError(f"dataset has no samples to split ({dataset!r})")
    if counts.min() < 2:
        label = int(classes[counts.argmin()])
        raise ValueError(f"class {label} has 1 sample; a stratified split needs at least 2 per class")
    num_test = math.ceil(test_fraction * labels.size)  # as scikit-learn counts
    if min(num_test, labels.size - num_test) < classes.size:
        raise ValueError(
            f"test_fraction={test_fraction} splits {labels.size} samples into {labels.size - num_test} train and "
            f"{num_test} test samples; each side needs at least one per class ({classes.size} classes)"
        )
    train_idx, test_idx = train_test_split(
        np.arange(labels.size), test_size=test_fraction, stratify=labels, random_state=seed
    )
    for side, indices in (("train", train_idx), ("test", test_idx)):
        missing = np.setdiff1d(classes, labels[indices])
        if missing.size:
            raise ValueError(
                f"test_fraction={test_fraction} leaves classes {missing[:10].tolist()} out of the {side} side "
                "(too few samples to share); a stratified split keeps every class on both sides: choose a "
                "test_fraction nearer 0.5"
            )
    return (
        dataset.subset(np.sort(train_idx), name=f"{dataset.name} (train)"),
        dataset.subset(np.sort(test_idx), name=f"{dataset.name} (test)"),
    )
