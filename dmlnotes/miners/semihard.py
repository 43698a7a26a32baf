"""Semi-hard negative mining (survey section 1.2; FaceNet, Schroff et al. 2015).

A negative ``n`` is semi-hard for the anchor-positive pair ``(a, p)`` when it is farther
from the anchor than the positive but still inside the margin:

    d(a, p) < d(a, n) < d(a, p) + m,

so the triplet loss ``[d(a, p) + m - d(a, n)]_+`` of eq. (2) is positive but smaller than
``m``: the triplet still teaches something, yet it is not the hardest one, whose use from
the start of training tends to collapse the model (FaceNet, section 3.2). With a
similarity the inequalities flip: ``s(a, p) - m < s(a, n) < s(a, p)``.

Choices (the paper leaves them open):

* every ordered anchor-positive pair of the batch is used, as FaceNet does ("we use all
  anchor-positive pairs in a mini-batch");
* ``selection="hardest"`` (default) takes the semi-hard negative closest to the anchor;
  ``selection="random"`` takes one uniformly at random (the public FaceNet
  re-implementation davidsandberg/facenet, ``select_triplets``, also draws its negative
  at random among the candidates);
* a pair with no semi-hard negative is dropped, so every returned triplet is semi-hard
  and ``last_num_triplets`` counts exactly those. TensorFlow's ``triplet_semihard_loss``
  keeps such pairs instead: it takes the closest negative beyond the positive even when
  it lies beyond the margin (loss 0), and, when every negative is closer than the
  positive, falls back to the farthest negative (a hard triplet, loss > m).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..checks import check_choice, check_non_negative
from ..distances import Distance
from ..indices import label_masks
from .base import TripletMiner, default_distance, masked_argbest, seeded_generator

SELECTIONS = ("hardest", "random")


class SemiHardNegativeMiner(TripletMiner):
    """For each anchor-positive pair, a negative with ``d(a, p) < d(a, n) < d(a, p) + margin``.

    Args:
        margin: the triplet loss's margin ``m`` (> 0); FaceNet uses 0.2 on squared distances
            of L2-normalised embeddings. Use the same value and distance as the loss.
        distance: default squared Euclidean on L2-normalised embeddings (FaceNet).
        selection: ``"hardest"`` (closest semi-hard negative) or ``"random"`` (uniform among them).
        seed: seed of the miner's own generator for ``selection="random"``; ``None`` uses
            torch's global generator.

    Returns at most one triplet per ordered anchor-positive pair; pairs without a
    semi-hard negative are dropped.
    """

    def __init__(
        self,
        margin: float = 0.2,
        distance: Distance | None = None,
        selection: str = "hardest",
        seed: int | None = None,
    ):
        super().__init__()
        self.margin = check_non_negative("margin", margin)
        if self.margin == 0:
            raise ValueError("margin must be > 0: with margin 0 the semi-hard band d_ap < d_an < d_ap + m is empty")
        check_choice("selection", selection, SELECTIONS)
        self.distance = default_distance(distance)
        self.selection = selection
        self.generator = seeded_generator(seed)

    def mine(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        matrix = self.distance(embeddings)
        positive_pairs, negative_pairs = label_masks(labels)
        anchors, positives = torch.where(positive_pairs)
        # violation[i, n] = d(a_i, p_i) + m - d(a_i, n) (signs flipped for a similarity);
        # semi-hard means 0 < violation < m.
        violation = self.distance.margin_violation(
            matrix[anchors, positives].unsqueeze(1), matrix[anchors], self.margin
        )
        semihard = negative_pairs[anchors] & (violation > 0) & (violation < self.margin)
        if self.selection == "hardest":
            scores = violation
        else:
            scores = torch.rand(semihard.shape, generator=self.generator).to(semihard.device)
        negatives, has_semihard = masked_argbest(scores, semihard, largest=True)
        return anchors[has_semihard], positives[has_semihard], negatives[has_semihard]
