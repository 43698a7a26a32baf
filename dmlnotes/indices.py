"""Which pairs and triplets a batch holds, and how a miner tells a loss which to use.

``label_masks`` gives the positive and negative pairs of a batch, ``all_triplet_indices``
its valid triplets (``count_triplets`` their number). Index tuples come in two formats,
as in pytorch-metric-learning:

* triplets ``(anchors, positives, negatives)``: three long tensors of equal length ``T``;
  triplet ``t`` is ``(anchors[t], positives[t], negatives[t])``;
* pairs ``(anchors_p, positives, anchors_n, negatives)``: positive pairs
  ``(anchors_p[i], positives[i])`` and negative pairs ``(anchors_n[j], negatives[j])``.

The helpers validate a tuple and convert one format into the other, so that a pair loss
accepts a triplet miner and the other way round.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .checks import check_labels

IndexTuple = tuple[Tensor, ...]


def label_masks(labels: Tensor) -> tuple[Tensor, Tensor]:
    """Boolean ``(n, n)`` masks of positive pairs (same label, i != j) and negative pairs."""
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    eye = torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def all_triplet_indices(labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(anchors, positives, negatives)`` of every valid triplet, ordered by anchor, positive, negative.

    Equal to ``torch.where(positive[a, p] & negative[a, n])`` without building the n^3 mask: each
    positive pair ``(a, p)`` is repeated once per negative of ``a``, and the negatives are
    read from the anchor's row of the negative-pair list.
    """
    positive_pairs, negative_pairs = label_masks(labels)
    anchors, positives = torch.where(positive_pairs)
    negatives_of = torch.where(negative_pairs)[1]  # row by row, so anchor a's negatives are contiguous
    per_anchor = negative_pairs.sum(dim=1)
    first_negative = torch.cumsum(per_anchor, dim=0) - per_anchor
    repeats = per_anchor[anchors]
    pair = torch.repeat_interleave(torch.arange(len(anchors), device=labels.device), repeats)
    start_of_pair = torch.repeat_interleave(torch.cumsum(repeats, dim=0) - repeats, repeats)
    offset = torch.arange(len(pair), device=labels.device) - start_of_pair
    return anchors[pair], positives[pair], negatives_of[first_negative[anchors[pair]] + offset]


def count_triplets(labels) -> int:
    """Number of valid triplets, ``sum_c n_c (n_c - 1) (n - n_c)``, computed from class sizes only."""
    labels = check_labels(labels)
    if labels.numel() == 0:
        return 0
    class_sizes = torch.unique(labels, return_counts=True)[1].long()
    return int((class_sizes * (class_sizes - 1) * (labels.numel() - class_sizes)).sum())


def check_indices_tuple(indices_tuple, labels: Tensor) -> IndexTuple:
    """Validate a miner's tuple against the batch's labels and return it as long tensors.

    Checks the format (3 or 4 one-dimensional integer tensors, matching lengths, indices
    inside the batch) and the labels: a positive must share its anchor's label and a
    negative must not, which catches tuples given in the wrong order.
    """
    if not isinstance(indices_tuple, (tuple, list)) or len(indices_tuple) not in (3, 4):
        raise ValueError(
            "indices_tuple must be a tuple of 3 tensors (anchors, positives, negatives) or of 4 tensors "
            f"(anchors_p, positives, anchors_n, negatives), got {_describe(indices_tuple)}"
        )
    batch_size = labels.shape[0]
    tensors = []
    for index in indices_tuple:
        index = torch.as_tensor(index, device=labels.device)
        if index.dim() != 1 or index.is_floating_point() or index.is_complex() or index.dtype == torch.bool:
            raise ValueError(
                f"indices_tuple must hold 1-D integer tensors, got dtype {index.dtype} and shape {tuple(index.shape)}"
            )
        index = index.long()
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= batch_size):
            raise ValueError(f"indices_tuple holds an index outside the batch of size {batch_size}")
        tensors.append(index)
    if len(tensors) == 3:
        anchors, positives, negatives = tensors
        if not anchors.shape == positives.shape == negatives.shape:
            raise ValueError(
                "anchors, positives and negatives must have the same length, got "
                f"{anchors.numel()}, {positives.numel()} and {negatives.numel()}"
            )
        positive_pairs, negative_pairs = (anchors, positives), (anchors, negatives)
    else:
        if tensors[0].shape != tensors[1].shape or tensors[2].shape != tensors[3].shape:
            raise ValueError(
                "anchors_p and positives, and anchors_n and negatives, must have the same lengths, got "
                f"{tensors[0].numel()}, {tensors[1].numel()}, {tensors[2].numel()} and {tensors[3].numel()}"
            )
        positive_pairs, negative_pairs = tensors[:2], tensors[2:]
    if (labels[positive_pairs[0]] != labels[positive_pairs[1]]).any():
        raise ValueError("indices_tuple pairs an anchor with a 'positive' of another class (is the order a, p, n?)")
    if (labels[negative_pairs[0]] == labels[negative_pairs[1]]).any():
        raise ValueError("indices_tuple pairs an anchor with a 'negative' of its own class (is the order a, p, n?)")
    return tuple(tensors)


def pairs_from_indices(indices_tuple: IndexTuple) -> IndexTuple:
    """``(a, p, n) -> (a, p, a, n)``: each triplet gives one positive and one negative pair.

    A pair shared by several triplets appears once per triplet (as in pytorch-metric-learning).
    A 4-tuple is returned unchanged.
    """
    if len(indices_tuple) == 4:
        return tuple(indices_tuple)
    anchors, positives, negatives = indices_tuple
    return anchors, positives, anchors, negatives


def triplets_from_indices(indices_tuple: IndexTuple) -> IndexTuple:
    """``(a1, p, a2, n) -> (a, p, n)``: every positive pair with every negative pair of the same anchor.

    A 3-tuple is returned unchanged. Memory grows with (#positive pairs x #negative pairs).
    """
    if len(indices_tuple) == 3:
        return tuple(indices_tuple)
    anchors_p, positives, anchors_n, negatives = indices_tuple
    which_positive, which_negative = torch.where(anchors_p.unsqueeze(1) == anchors_n.unsqueeze(0))
    return anchors_p[which_positive], positives[which_positive], negatives[which_negative]


def _describe(value) -> str:
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of length {len(value)}"
    return type(value).__name__
