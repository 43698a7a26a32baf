"""Distance-weighted sampling (Wu, Manmatha, Smola, Krähenbühl 2017, "Sampling Matters in Deep
Embedding Learning").

In high dimension, the distances between random points on the unit sphere concentrate
near ``sqrt 2``: sampling negatives uniformly gives almost only such distances. Wu et
al. sample each negative with weight ``1 / q(d)``, the inverse of the density of
distances between uniform points on the sphere ``S^{n-1}`` (``n`` the embedding
dimension),

    q(d) = d^{n-2} (1 - d^2 / 4)^{(n-3)/2} * Gamma(n/2) / (sqrt(pi) Gamma((n-1)/2)),   0 < d < 2,

so that the sampled negatives spread over all distances, clipped below at ``cutoff``
(the weights of very close pairs explode) and only among negatives closer than
``nonzero_loss_cutoff`` (farther ones give a zero margin loss, ``alpha + beta = 1.4``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ..checks import check_positive
from ..distances import pairwise_euclidean
from ..indices import label_masks
from .base import TripletMiner, seeded_generator


def log_sphere_distance_density(distances: Tensor, dim: int) -> Tensor:
    """``log q(d)``: log density of the distance between two uniform points of the unit sphere in R^dim.

    ``q`` integrates to 1 over ``0 < d < 2``; computed in the log domain (``d^{dim-2}``
    underflows float32 for ``dim`` in the hundreds). ``-inf``/NaN outside ``(0, 2)``.
    """
    if dim < 2:
        raise ValueError(f"dim must be at least 2, got {dim!r}")
    log_constant = math.lgamma(dim / 2) - math.lgamma((dim - 1) / 2) - 0.5 * math.log(math.pi)
    return log_constant + (dim - 2) * torch.log(distances) + (dim - 3) / 2 * torch.log1p(-(distances**2) / 4)


class DistanceWeightedMiner(TripletMiner):
    """One negative per positive pair, drawn with probability proportional to ``1 / q(max(d, cutoff))``.

    Args:
        cutoff: distances below it count as ``cutoff`` in the weights (0.5, the paper's).
        nonzero_loss_cutoff: only negatives closer than this are drawn (1.4 = margin 0.2 +
            beta 1.2 of :class:`~dmlnotes.losses.MarginLoss`, the paper's code).
        seed: seed of the miner's own generator; ``None`` uses torch's global generator.

    Conventions: plain Euclidean distances between L2-normalised embeddings (the paper's),
    ``n`` = the embedding dimension. Every ordered positive pair ``(a, p)`` gets one
    negative, as in the paper's code; an anchor without a negative closer than
    ``nonzero_loss_cutoff`` gives no triplet (none of its negatives would have a loss; the
    paper's code then draws uniformly, pytorch-metric-learning skips the anchor as here).
    The draw is a Gumbel-max over the log weights, so no weight is ever exponentiated;
    the uniform numbers come from the generator on the CPU, so a seed gives the same
    triplets on every device.

    Relation to pytorch-metric-learning's ``DistanceWeightedMiner`` (same cutoffs and
    weights): it draws, per anchor, as many positives as its class has samples, at random
    with replacement (one negative each), and normalises the log weights by the batch's
    maximum; here each positive is taken once. The sampling distribution of the negatives
    is the same.
    """

    def __init__(self, cutoff: float = 0.5, nonzero_loss_cutoff: float = 1.4, seed: int | None = None):
        super().__init__()
        self.cutoff = check_positive("cutoff", cutoff)
        self.nonzero_loss_cutoff = check_positive("nonzero_loss_cutoff", nonzero_loss_cutoff)
        if self.nonzero_loss_cutoff <= self.cutoff:
            raise ValueError(
                f"nonzero_loss_cutoff must be larger than cutoff, got {nonzero_loss_cutoff!r} <= {cutoff!r}"
            )
        self.seed = seed
        self.generator = seeded_generator(seed)

    def negative_log_weights(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """``(n, n)``: ``-log q(max(d_ij, cutoff))`` where ``j`` may be drawn for anchor ``i``, else ``-inf``."""
        precise = torch.float32 if embeddings.dtype in (torch.float16, torch.bfloat16) else embeddings.dtype
        distances = pairwise_euclidean(F.normalize(embeddings.to(precise), dim=1))
        allowed = label_masks(labels)[1] & (distances < self.nonzero_loss_cutoff)
        # Clamped into [cutoff, nonzero_loss_cutoff]: never the singularity at d = 2.
        clipped = distances.clamp(self.cutoff, min(self.nonzero_loss_cutoff, 2.0))
        log_weights = -log_sphere_distance_density(clipped, embeddings.shape[1])
        return log_weights.masked_fill(~allowed, float("-inf"))

    def sampling_probabilities(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """``(n, n)``: row ``i`` is the distribution of anchor ``i``'s negative (zeros if it has none)."""
        log_weights = self.negative_log_weights(embeddings, labels)
        has_any = torch.isfinite(log_weights).any(dim=1, keepdim=True)
        return torch.softmax(log_weights.masked_fill(~has_any, 0.0), dim=1) * has_any

    def mine(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        log_weights = self.negative_log_weights(embeddings, labels)
        positive_pairs = label_masks(labels)[0] & torch.isfinite(log_weights).any(dim=1, keepdim=True)
        anchors, positives = torch.where(positive_pairs)
        uniform = torch.rand(len(anchors), len(labels), generator=self.generator, dtype=torch.float64)
        uniform = uniform.clamp_min(torch.finfo(torch.float64).tiny).to(device=log_weights.device)
        gumbel = -torch.log(-torch.log(uniform))
        negatives = (log_weights[anchors].double() + gumbel).argmax(dim=1)
        return anchors, positives, negatives

    def extra_repr(self) -> str:
        return f"cutoff={self.cutoff}, nonzero_loss_cutoff={self.nonzero_loss_cutoff}, seed={self.seed}"
