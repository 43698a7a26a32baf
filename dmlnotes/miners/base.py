"""What every miner shares: input checks, the default distance and masked arg-min/max.

A miner looks at a batch without gradient and returns the indices of the tuples worth
learning from (formats in :mod:`dmlnotes.indices`); a loss takes them as ``indices_tuple``.
"""

from __future__ import annotations

from numbers import Integral

import torch
from torch import Tensor, nn

from ..checks import check_embeddings_and_labels
from ..distances import default_distance  # noqa: F401 (re-exported for the miners)


def seeded_generator(seed: int | None) -> torch.Generator | None:
    """A miner's own random generator, or ``None`` (torch's global generator) when no seed is given."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, Integral):
        raise ValueError(f"seed must be an integer or None, got {seed!r}")
    generator = torch.Generator()
    generator.manual_seed(int(seed))
    return generator


def empty_triplets(device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """Three empty long tensors: the answer of a miner that found nothing."""
    empty = torch.empty(0, dtype=torch.long, device=device)
    return empty, empty.clone(), empty.clone()


def masked_argbest(values: Tensor, mask: Tensor, largest: bool) -> tuple[Tensor, Tensor]:
    """Per row, the column of the largest (or smallest) value among the masked-in entries.

    Returns ``(columns, has_any)``: ``has_any[i]`` is False when row ``i`` has no entry in
    the mask, and then ``columns[i]`` is meaningless. Ties go to the first column.
    """
    fill = float("-inf") if largest else float("inf")
    masked = values.masked_fill(~mask, fill)
    columns = masked.argmax(dim=-1) if largest else masked.argmin(dim=-1)
    return columns, mask.any(dim=-1)


class TripletMiner(nn.Module):
    """Base class: ``miner(embeddings, labels) -> (anchors, positives, negatives)``.

    Subclasses implement ``mine(embeddings, labels)``; ``forward`` checks the batch
    (2-D float embeddings, 1-D integer labels of the same length), runs ``mine`` under
    ``torch.no_grad()`` on detached embeddings, and returns long tensors on the
    embeddings' device. ``last_num_triplets`` holds how many triplets the last call found.
    """

    def __init__(self):
        super().__init__()
        self.last_num_triplets: int | None = None

    def forward(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        labels = check_embeddings_and_labels(embeddings, labels)
        if labels.numel() == 0:
            anchors, positives, negatives = empty_triplets(embeddings.device)
        else:
            with torch.no_grad():
                anchors, positives, negatives = self.mine(embeddings.detach(), labels)
        triplets = tuple(
            index.to(device=embeddings.device, dtype=torch.long) for index in (anchors, positives, negatives)
        )
        self.last_num_triplets = int(triplets[0].numel())
        return triplets

    def mine(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        raise NotImplementedError
