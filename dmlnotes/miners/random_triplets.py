"""Random valid triplets: the "simple random sampling" the survey (section 1.2) warns about.

Most random triplets are trivial (zero loss) once the embedding is half-trained, so
learning from them is slow; the lesson compares this miner with the hard and semi-hard
ones. Two ways to draw:

* ``num_triplets=k``: ``k`` distinct triplets drawn uniformly from all valid triplets
  (all of them, shuffled, if the batch has fewer than ``k``);
* ``per_anchor=k``: for every sample that has a positive and a negative, ``k`` triplets
  whose positive and negative are drawn uniformly and independently, with replacement
  (the scheme of pytorch-metric-learning's ``triplets_per_anchor``).

Randomness comes from the miner's own ``torch.Generator`` when ``seed`` is given, else
from torch's global generator (so ``seed_everything`` makes runs repeatable). Random
numbers are drawn on the generator's device and then moved to the embeddings' device,
so a seed gives the same triplets on every device.
"""

from __future__ import annotations

from numbers import Integral

import torch
from torch import Tensor

from ..indices import all_triplet_indices, label_masks
from .base import TripletMiner, seeded_generator


class RandomTripletsMiner(TripletMiner):
    """Random valid triplets: ``num_triplets`` of them in all, or ``per_anchor`` per anchor.

    Args:
        num_triplets: draw this many distinct triplets uniformly from all valid ones.
        per_anchor: draw this many triplets for each anchor (give one of the two, not both).
        seed: seed of the miner's own generator; ``None`` uses torch's global generator.
    """

    def __init__(self, num_triplets: int | None = None, per_anchor: int | None = None, seed: int | None = None):
        super().__init__()
        if (num_triplets is None) == (per_anchor is None):
            raise ValueError("give exactly one of num_triplets and per_anchor")
        for name, value in (("num_triplets", num_triplets), ("per_anchor", per_anchor)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, Integral) or value < 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.num_triplets = num_triplets
        self.per_anchor = per_anchor
        self.seed = seed
        self.generator = seeded_generator(seed)

    def _uniform(self, *shape: int, device: torch.device) -> Tensor:
        return torch.rand(*shape, generator=self.generator).to(device)

    def mine(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        if self.num_triplets is not None:
            anchors, positives, negatives = all_triplet_indices(labels)
            # Sorting random keys gives a uniform random permutation; keep the first k.
            chosen = self._uniform(anchors.numel(), device=labels.device).argsort()[: self.num_triplets]
            return anchors[chosen], positives[chosen], negatives[chosen]
        return self._per_anchor(labels)

    def _per_anchor(self, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        positive_pairs, negative_pairs = label_masks(labels)
        anchors = torch.where(positive_pairs.any(dim=1) & negative_pairs.any(dim=1))[0]
        positives = self._draw_columns(positive_pairs[anchors])
        negatives = self._draw_columns(negative_pairs[anchors])
        return anchors.repeat_interleave(self.per_anchor), positives, negatives

    def _draw_columns(self, mask: Tensor) -> Tensor:
        """``per_anchor`` uniform draws (with replacement) of an allowed column in each row, flattened."""
        # A stable sort of ~mask lists each row's allowed columns first; a uniform slot
        # below the row's count of allowed columns then picks one of them uniformly.
        allowed_first = torch.sort((~mask).to(torch.uint8), dim=1, stable=True).indices
        counts = mask.sum(dim=1, keepdim=True)
        uniform = self._uniform(mask.shape[0], self.per_anchor, device=mask.device)
        slots = (uniform * counts).long().clamp_max(counts - 1)
        return allowed_first.gather(1, slots).reshape(-1)
