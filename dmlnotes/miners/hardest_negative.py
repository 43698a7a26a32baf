"""Hardest-negative mining (survey section 1.2; HardNet, Mishchuk et al. 2017).

For every anchor-positive pair ``(a, p)`` of the batch the miner takes the negative
closest to the anchor,

    n*(a) = argmin_{n : label[n] != label[a]} d(a, n),

and returns the triplet ``(a, p, n*(a))``. HardNet itself takes, for each matching
pair, the closest non-matching descriptor to either the anchor or the positive; the
anchor-only rule here is the common simplification (``TripletLoss(swap=True)`` brings
the positive's side back).

The survey (after FaceNet, Schroff et al. 2015) warns that the hardest negatives used
from the start of training tend to collapse the model: every embedding moves to one
point, where all distances are zero and the loss is stuck at the margin. The lesson
shows this; the semi-hard miner is the cure the survey names.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..distances import Distance
from ..indices import label_masks
from .base import TripletMiner, default_distance, masked_argbest


class HardestNegativeMiner(TripletMiner):
    """For each anchor-positive pair, the anchor's closest negative: ``(a, p, argmin_n d(a, n))``.

    Args:
        distance: how closeness is measured; default squared Euclidean on L2-normalised
            embeddings (use the loss's distance). With a similarity the largest one wins.

    Returns all ordered positive pairs whose anchor has a negative, so ``T`` = number of
    such pairs. Ties go to the lowest index.
    """

    def __init__(self, distance: Distance | None = None):
        super().__init__()
        self.distance = default_distance(distance)

    def mine(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        matrix = self.distance(embeddings)
        positive_pairs, negative_pairs = label_masks(labels)
        hardest_negative, has_negative = masked_argbest(matrix, negative_pairs, largest=self.distance.is_similarity)
        anchors, positives = torch.where(positive_pairs & has_negative.unsqueeze(1))
        return anchors, positives, hardest_negative[anchors]
