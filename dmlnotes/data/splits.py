"""Splits of a labelled data set: class-disjoint (open set) and stratified (closed set)."""

from __future__ import annotations

import numpy as np
import torch


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
