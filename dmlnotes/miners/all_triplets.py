"""Every valid triplet of a batch, and how many there are (survey section 1.2).

A triplet ``(a, p, n)`` is valid when ``a != p``, ``label[a] == label[p]`` and
``label[n] != label[a]``. For a batch of ``n`` samples in which class ``c`` has ``n_c``
members there are

    sum_c n_c (n_c - 1) (n - n_c)

valid triplets (ordered anchor-positive pairs times the anchor's negatives): O(n^3) for
a class-balanced batch, which is why the survey says exhaustive triplet training does
not scale and why mining matters. ``count_triplets`` gives the number without building
the triplets; ``all_triplet_indices`` builds them from an ``(n, n, n)`` boolean mask,
so memory is n^3 bytes (16 MB at n = 256) plus the indices.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..losses.base import label_masks
from .base import TripletMiner


def triplet_mask(labels: Tensor) -> Tensor:
    """Boolean ``(n, n, n)`` mask, True at ``[a, p, n]`` for every valid triplet."""
    positive_pairs, negative_pairs = label_masks(labels)
    return positive_pairs.unsqueeze(2) & negative_pairs.unsqueeze(1)


def all_triplet_indices(labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(anchors, positives, negatives)`` of every valid triplet, ordered by anchor, positive, negative."""
    return torch.where(triplet_mask(labels))


def count_triplets(labels) -> int:
    """Number of valid triplets, ``sum_c n_c (n_c - 1) (n - n_c)``, computed from class sizes only."""
    labels = torch.as_tensor(labels)
    if labels.dim() != 1:
        raise ValueError(f"labels must have shape (batch,), got shape {tuple(labels.shape)}")
    if labels.numel() == 0:
        return 0
    class_sizes = torch.unique(labels, return_counts=True)[1].long()
    return int((class_sizes * (class_sizes - 1) * (labels.numel() - class_sizes)).sum())


class AllTripletsMiner(TripletMiner):
    """Returns every valid triplet of the batch (no selection: the baseline of section 1.2).

    Most of these triplets are trivial once training has started (their loss is zero), which
    is what ``TripletLoss.last_stats.active_fraction`` shows. ``last_num_triplets`` equals
    ``count_triplets(labels)``.
    """

    def mine(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return all_triplet_indices(labels)
