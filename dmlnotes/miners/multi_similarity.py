"""Multi-similarity pair mining (Wang, Han, Huang, Dong, Scott 2019).

For each anchor the miner compares every pair with the anchor's hardest pair of the other
kind, with a margin ``epsilon``:

    keep negative n  if  s_an + epsilon > min_p s_ap     (closer than the hardest positive)
    keep positive p  if  s_ap - epsilon < max_n s_an     (farther than the hardest negative)

An anchor keeps positives exactly when it keeps negatives (for ``epsilon >= 0``: its
hardest negative beats any kept positive's bound, and the other way round), and keeps
nothing when it has no positive or no negative. It returns pairs
``(anchors_p, positives, anchors_n, negatives)`` for a pair loss such as
:class:`~dmlnotes.losses.MultiSimilarityLoss`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..checks import check_embeddings_and_labels, check_non_negative
from ..indices import label_masks
from ..losses.multi_similarity import check_similarity, precise_similarities


class MultiSimilarityMiner(nn.Module):
    """``miner(embeddings, labels) -> (anchors_p, positives, anchors_n, negatives)``.

    Args:
        epsilon: the margin, in units of similarity (default 0.1, the paper's and
            pytorch-metric-learning's ``MultiSimilarityMiner(epsilon=0.1)``, which keeps the same pairs).
        distance: a similarity (default ``CosineSimilarity()``); use the loss's.

    Pairs come in row-major order (by anchor, then by the other index). Runs without
    gradient; 16-bit batches are compared in float32. ``last_num_pairs`` holds
    ``(positive pairs, negative pairs)`` of the last call.
    """

    def __init__(self, epsilon: float = 0.1, distance=None):
        super().__init__()
        self.epsilon = check_non_negative("epsilon", epsilon)
        self.distance = check_similarity(distance, type(self).__name__)
        self.last_num_pairs: tuple[int, int] | None = None

    def forward(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        labels = check_embeddings_and_labels(embeddings, labels)
        with torch.no_grad():
            keep_positive, keep_negative = self.mine(embeddings.detach(), labels)
        anchors_p, positives = torch.where(keep_positive)
        anchors_n, negatives = torch.where(keep_negative)
        self.last_num_pairs = (int(anchors_p.numel()), int(anchors_n.numel()))
        return anchors_p, positives, anchors_n, negatives

    def mine(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """Boolean ``(n, n)`` masks of the positive and negative pairs kept."""
        positive, negative = label_masks(labels)
        if labels.numel() == 0:
            return positive, negative
        similarities = precise_similarities(self.distance, embeddings)
        hardest_positive = similarities.masked_fill(~positive, float("inf")).amin(dim=1, keepdim=True)
        hardest_negative = similarities.masked_fill(~negative, float("-inf")).amax(dim=1, keepdim=True)
        keep_negative = negative & (similarities + self.epsilon > hardest_positive)
        keep_positive = positive & (similarities - self.epsilon < hardest_negative)
        return keep_positive, keep_negative

    def extra_repr(self) -> str:
        return f"epsilon={self.epsilon}"
