"""Neighbourhood components analysis (NCA) as a loss on a batch (Goldberger et al. 2004).

Each sample i picks a neighbour j != i at random with probability
``p_ij = exp(-s d_ij^2) / sum_{k != i} exp(-s d_ik^2)``; NCA maximises the probability
that the neighbour has i's class. The loss is ``-log sum_{j: y_j = y_i} p_ij`` averaged
over the samples that have a positive in the batch. With a linear map ``f(x) = Lx`` this
is classic NCA, which learns the Mahalanobis metric ``M = L^T L``; with a network it is
"deep" NCA. The survey cites NCA as the template of the N-pair loss (eq. 4) and of the
proxy loss (eq. 13).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..checks import check_positive
from ..distances import pairwise_squared_euclidean
from .base import MetricLoss, label_masks


class NCALoss(MetricLoss):
    """Stochastic nearest-neighbour loss over a batch.

    Args:
        scale: ``s``, multiplies the negative squared distances before the softmax
            (pytorch-metric-learning's ``softmax_scale``; default 1 as there).
        warn_if_empty: warn when no sample has a positive in the batch.

    Distances are squared Euclidean on the embeddings as given (not normalised). Computed
    in the log domain, so an anchor whose positives are all far away (probability below
    float precision) still counts with its true, large loss; pytorch-metric-learning's
    ``NCALoss`` drops such anchors.
    Shapes: embeddings ``(n, dim)``, labels ``(n,)``; returns a scalar.
    """

    def __init__(self, scale: float = 1.0, warn_if_empty: bool = False):
        super().__init__(warn_if_empty)
        self.scale = check_positive("scale", scale)

    def compute_loss(self, embeddings: Tensor, labels: Tensor, indices_tuple=None) -> Tensor:
        positive, _ = label_masks(labels)
        has_positive = positive.any(dim=1)
        if not has_positive.any():
            return self.empty_loss(embeddings, "positive pair")
        eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
        logits = (-self.scale * pairwise_squared_euclidean(embeddings)).masked_fill(eye, float("-inf"))
        log_p = torch.log_softmax(logits, dim=1)  # log p_ij, one pass over the full matrix
        # Gather each row's positives (at most the largest class size) instead of masking the
        # whole matrix: the log-sum-exp over positives then costs O(n K), not O(n^2).
        num_positives = positive.sum(dim=1)
        columns = positive.to(torch.uint8).topk(int(num_positives.max()), dim=1).indices  # positives first
        is_real = torch.arange(columns.shape[1], device=labels.device) < num_positives.unsqueeze(1)
        log_p_positive = log_p.gather(1, columns).masked_fill(~is_real, float("-inf"))
        terms = -torch.logsumexp(log_p_positive, dim=1)[has_positive]
        return self.mean_of_terms(terms, embeddings, "positive pair")

    def extra_repr(self) -> str:
        return f"scale={self.scale}"
