"""Deep clustering loss (Hershey, Chen, Le Roux, Watanabe 2016; survey section 1.9).

Hershey et al. train embeddings of spectrogram bins so that bins of the same speaker
cluster: the affinity matrix of the embeddings should equal that of the labels,

    C_Y(V) = ||V V^T - Y Y^T||_F^2 = sum_ij (<v_i, v_j> - [y_i = y_j])^2,

with ``V`` the ``(N, D)`` embeddings and ``Y`` the ``(N, C)`` one-hot labels. The survey
(section 1.9, no equation) cites it as a Frobenius norm on the residual between the
binary label affinity and the estimated one. The ``N x N`` matrices are never formed:

    ||V V^T - Y Y^T||_F^2 = ||V^T V||_F^2 - 2 ||V^T Y||_F^2 + ||Y^T Y||_F^2,

a ``D x D``, a ``D x C`` and a diagonal ``C x C`` matrix.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import LossTerms, MetricLoss


class _ResidualRows(torch.autograd.Function):
    """``r_i = v_i^T G v_i - 2 <v_i, s_{y_i}> + n_{y_i}`` from ``G = V^T V`` and the class sums ``s_c``.

    The gradient in closed form, with ``p_k = G v_k - s_{y_k}``:
    ``d(sum_i g_i r_i)/dv_k = 2 g_k p_k + 2 (H v_k - w_{y_k})``, ``H = V^T diag(g) V`` and
    ``w_c = sum_{y_i = c} g_i v_i``. The reductions weight every row alike (``g_i = g``); then
    ``H = g G``, ``w = g s`` and the gradient is ``4 g p_k``, already known from the forward
    pass (autograd would spend three more ``N x D x D`` products). Not twice differentiable.
    """

    @staticmethod
    def forward(ctx, vectors: Tensor, classes: Tensor, num_classes: int) -> Tensor:
        class_sums = vectors.new_zeros(num_classes, vectors.shape[1]).index_add_(0, classes, vectors)  # V^T Y
        class_sizes = torch.bincount(classes, minlength=num_classes).to(vectors.dtype)  # diagonal of Y^T Y
        own_class_sums = class_sums[classes]
        directions = vectors @ (vectors.T @ vectors) - own_class_sums  # p_i = G v_i - s_{y_i}
        ctx.save_for_backward(vectors, classes, directions)
        ctx.num_classes = num_classes
        return ((directions - own_class_sums) * vectors).sum(dim=1) + class_sizes[classes]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):
        vectors, classes, directions = ctx.saved_tensors
        if bool((grad == grad[0]).all()):
            return (4.0 * grad[0]) * directions, None, None
        weighted = grad.unsqueeze(1) * vectors
        weighted_gram = vectors.T @ weighted  # H
        weighted_class_sums = vectors.new_zeros(ctx.num_classes, vectors.shape[1]).index_add_(0, classes, weighted)
        grad_vectors = grad.unsqueeze(1) * directions + vectors @ weighted_gram - weighted_class_sums[classes]
        return 2.0 * grad_vectors, None, None


class DeepClusteringLoss(MetricLoss):
    r"""Deep clustering: the embeddings' affinity matrix fitted to the labels' one.

    One term per sample ``i`` (a row of the residual), computed without the ``N x N``
    matrix from the ``D x D`` Gram matrix ``G = V^T V`` and the class sums
    ``s_c = sum_{y_j = c} v_j`` (``V^T Y`` without a one-hot matrix):

    .. math::
        r_i = \sum_j \big(\langle v_i, v_j\rangle - [y_i = y_j]\big)^2
            = v_i^\top G\, v_i - 2 \langle v_i, s_{y_i}\rangle + n_{y_i}

    with ``n_c`` the size of class ``c`` in the batch; ``sum_i r_i = ||V V^T - Y Y^T||_F^2``.
    Time ``O(N D^2)`` and memory ``O(N D + D^2)`` instead of ``O(N^2 D)`` and ``O(N^2)``, whatever
    the number of classes; the gradient is in closed form (``4 g (G v_k - s_{y_k})`` per
    sample for a reduction that weights the rows by ``g``). The low-rank form is the faster
    from about ``N = 2 D`` on; ``python -m dmlnotes.experiments.loss_benchmark
    --deep-clustering`` times both forms.

    Conventions:
        * ``normalize_embeddings=True`` (default): unit-norm embeddings, as in the paper;
          then ``<v_i, v_j>`` is a cosine, the diagonal of the residual is 0 and the loss is
          zero exactly when samples of a class coincide and classes are orthogonal (which
          needs ``D`` at least the number of classes in the batch). ``False`` uses the
          embeddings as given (the diagonal then asks for ``|v_i| = 1``).
        * Normalisation: the paper's objective is the plain Frobenius norm,
          ``reduction="sum"``. It grows like ``N^2``; ``"mean"`` (default) divides by ``N``,
          as the public reimplementations do (asteroid's ``deep_clustering_loss``, Jian Wu's
          ``deep-clustering``: divided by the number of time-frequency bins), so it still
          grows like ``N`` (it is ``N`` times the mean over the ``N^2`` entries).
          ``"mean_nonzero"`` divides by the samples with a non-zero row.
        * Each row is clamped at 0 (a sum of squares) against rounding in the expansion,
          which cancels terms of size ``n_{y_i}``: near a perfect fit a float32 row keeps an
          absolute accuracy of about ``1e-7 n_{y_i}``, not a relative one.
        * No miner: every pair counts, so an ``indices_tuple`` is refused.

    There is no deep clustering loss in pytorch-metric-learning to compare with.

    Args:
        normalize_embeddings: L2-normalise the embeddings first (default True, the paper's setting).
        warn_if_empty: warn when the batch has no sample.
        reduction: ``"mean"`` (default, the Frobenius norm divided by ``N``), ``"mean_nonzero"``
            or ``"sum"`` (the paper's ``C_Y(V)``).

    Shapes:
        embeddings ``(N, D)``, labels ``(N,)`` (any integer ids) -> scalar. ``last_stats``:
        ``num_terms = N``, ``num_active`` the rows that are not (numerically) zero.
    """

    takes_indices_tuple = False

    def __init__(self, normalize_embeddings: bool = True, warn_if_empty: bool = False, reduction: str = "mean"):
        super().__init__(warn_if_empty, reduction=reduction)
        self.normalize_embeddings = bool(normalize_embeddings)

    def compute_loss(self, embeddings: Tensor, labels: Tensor, indices_tuple=None) -> LossTerms:
        vectors = F.normalize(embeddings, dim=1) if self.normalize_embeddings else embeddings
        _, classes = torch.unique(labels, return_inverse=True)  # ids 0..C-1 of the batch's classes
        num_classes = int(classes.max()) + 1
        rows = _ResidualRows.apply(vectors, classes, num_classes)
        return LossTerms(rows.clamp_min(0.0), what="sample")

    def extra_repr(self) -> str:
        return f"normalize_embeddings={self.normalize_embeddings}, {super().extra_repr()}"
