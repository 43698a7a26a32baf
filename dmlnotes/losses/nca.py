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

    Distances are squared Euclidean on the embeddings as given (not normalised).
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
        logits = -self.scale * pairwise_squared_euclidean(embeddings)
        eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
        log_all = torch.logsumexp(logits.masked_fill(eye, float("-inf")), dim=1)
        log_positive = torch.logsumexp(logits.masked_fill(~positive, float("-inf")), dim=1)
        terms = (log_all - log_positive)[has_positive]
        return self.mean_of_terms(terms, embeddings, "positive pair")

    def extra_repr(self) -> str:
        return f"scale={self.scale}"
