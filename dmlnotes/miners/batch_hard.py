"""Batch-hard mining (Hermans, Beyer, Leibe 2017, "In Defense of the Triplet Loss").

For every anchor of a P x K batch, the hardest positive (the farthest sample of its
class) and the hardest negative (the closest sample of another class):

    p*(a) = argmax_{p != a, label[p] = label[a]} d(a, p),
    n*(a) = argmin_{label[n] != label[a]} d(a, n),

one triplet per anchor, so ``T = n`` for a batch in which every class has at least two
samples and there are at least two classes. With ``TripletLoss`` this is the
"batch hard" loss  (1/n) sum_a [m + d(a, p*) - d(a, n*)]_+. Hermans et al. use plain
(not squared) Euclidean distances on unnormalised embeddings, and P x K batches
(``dmlnotes.data.ClassBalancedBatchSampler``); pass ``EuclideanDistance()`` to follow them.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..distances import Distance
from ..indices import label_masks
from .base import TripletMiner, default_distance, masked_argbest


class BatchHardMiner(TripletMiner):
    """Per anchor, the farthest positive and the closest negative (one triplet per anchor).

    Args:
        distance: default squared Euclidean on L2-normalised embeddings (use the loss's
            distance); with a similarity, "farthest" is the smallest similarity.

    Anchors without a positive or without a negative are skipped. Ties go to the lowest index.
    """

    def __init__(self, distance: Distance | None = None):
        super().__init__()
        self.distance = default_distance(distance)

    def mine(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        matrix = self.distance(embeddings)
        positive_pairs, negative_pairs = label_masks(labels)
        closest_is_largest = self.distance.is_similarity
        hardest_positive, has_positive = masked_argbest(matrix, positive_pairs, largest=not closest_is_largest)
        hardest_negative, has_negative = masked_argbest(matrix, negative_pairs, largest=closest_is_largest)
        anchors = torch.where(has_positive & has_negative)[0]
        return anchors, hardest_positive[anchors], hardest_negative[anchors]
