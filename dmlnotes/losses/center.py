"""Centre loss (survey section 1.6, eq. (7); Wen, Zhang, Li & Qiao 2016).

A softmax classifier separates the classes but does not make them compact: its features
spread out radially and a class can be long and thin. The centre loss keeps one centre
per class and pulls every feature towards its class's centre, while the softmax keeps the
classes apart::

    L = L_S + L_C = - sum_i log softmax(W x_i + b)_{y_i} + lambda/2 sum_i ||x_i - c_{y_i}||^2     (7)

The centres are not trained by the optimiser: after each mini-batch every centre moves
part of the way towards the mean of its class's features in that batch (Wen et al.'s
update rule).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import check_choice, check_non_negative
from .base import LossTerms
from .class_weights import ClassWeightLoss, init_class_weights

CENTER_UPDATES = ("rule", "gradient")


class CenterLoss(ClassWeightLoss):
    r"""Softmax cross-entropy plus the centre loss, survey eq. (7) (Wen et al. 2016).

    For a sample ``x_i`` (the embedding, the paper's "deep feature") with label ``y_i``, the term is

    .. math::
        \ell_i = -\log \frac{\exp(W_{y_i}^\top x_i + b_{y_i})}{\sum_{j=1}^{C} \exp(W_j^\top x_i + b_j)}
                 + \frac{\lambda}{2} \|x_i - c_{y_i}\|_2^2

    and the loss reduces the ``\ell_i`` over the batch as ``reduction`` says.

    Conventions:
        * Reduction: ``"mean"`` (default) averages both terms over the batch, as Wen et al.'s
          Caffe code does (``SoftmaxWithLoss`` divides by the batch size, the centre loss layer
          computes ``sum ||x_i - c_{y_i}||^2 / m / 2`` and is weighted by ``loss_weight = lambda``),
          so a sample's feature receives ``lambda (x_i - c_{y_i}) / m`` from the centre term.
          ``"sum"`` is eq. (7) as written, summed over the batch. (The survey prints the softmax
          term without its minus sign and with ``W_{y_j}`` in the denominator; the paper's
          softmax loss is the cross-entropy written above.)
        * Plain features: no normalisation, squared Euclidean distance to the centre.
        * ``weight`` (the base class's one row per class) is the softmax classifier ``W``, with
          a bias ``b`` (``bias``, zero at the start like Caffe's inner-product layer): both are
          parameters trained by the optimiser, like any classifier. The centres ``c`` are a
          second ``(num_classes, embedding_dim)`` tensor, ``centers``, drawn like ``W``
          (:func:`~dmlnotes.losses.class_weights.init_class_weights`; Caffe uses a Xavier filler).
          They are the loss's own, not the classifier's: Wen et al. keep the two apart.

    Centre update, ``center_update=``:
        * ``"rule"`` (default, the paper's rule): ``centers`` is a buffer, not a
          parameter, so no gradient reaches it and :func:`dmlnotes.training.fit` (which hands
          ``loss_fn.parameters()`` that require grad to the optimiser) leaves it alone. Each call
          in training mode (``loss_fn.train()``, the default) first computes the loss with the
          current centres, then moves them with the batch's features (detached)::

              delta c_j = sum_{i: y_i = j} (c_j - x_i) / (1 + n_j)
              c_j      <- c_j - alpha * delta c_j

          with ``n_j`` the number of samples of class ``j`` in the batch. A class absent from the
          batch keeps its centre; a present one moves ``alpha n_j / (1 + n_j)`` of the way to its
          batch mean, so with ``0 <= alpha <= 1`` it never overshoots. In ``eval()`` mode nothing
          moves. (The Caffe code hands ``delta c_j`` to the solver as the centres' gradient, so
          there the step also gets momentum and weight decay; here it is the paper's plain rule.)
        * ``"gradient"``: ``centers`` is a parameter trained by the optimiser through the centre
          term, for comparison. With ``"mean"`` its gradient is ``lambda / m * sum_{y_i = j} (c_j - x_i)``
          (autograd's, including the ``1 / m`` of the reduction); ``alpha`` is then unused.

    Defaults and sources: ``center_weight = 0.003`` and ``alpha = 0.5``, the values given for
    Wen et al.'s face-recognition experiments (lambda between 0.003 and 0.01 there; the
    collection's technical notes); the reference Caffe face example (``ydwen/caffe-face``) uses
    ``loss_weight: 0.008``. They suit 512-d face features trained for many epochs; in a trial
    run like the collection's 2-D lessons (a few hundred steps on the digits),
    ``center_weight = 0.003`` barely changed the softmax's embedding, while 0.1-1 made the
    classes several times more compact. ``center_weight = 0`` is the softmax loss alone.

    Args:
        num_classes: number of training classes ``C`` (>= 2).
        embedding_dim: dimension of the embeddings (and of ``W``'s rows and the centres).
        center_weight: the survey's ``lambda >= 0``, the weight of the centre term.
        alpha: the centres' update rate ``0 <= alpha <= 1`` (``center_update="rule"`` only).
        center_update: ``"rule"`` (default) or ``"gradient"``, see above.
        warn_if_empty: warn when a batch is empty.
        reduction: ``"mean"`` (default), ``"mean_nonzero"`` or ``"sum"`` over the per-sample terms
            ``l_i`` (see :class:`~dmlnotes.losses.base.MetricLoss`).

    Shapes:
        embeddings ``(batch, embedding_dim)``, labels ``(batch,)`` with values in
        ``0 .. num_classes-1`` -> scalar. ``last_stats.num_terms`` is the batch size.
        No miner: passing an ``indices_tuple`` raises ``ValueError``.

    Training: give ``loss_fn.parameters()`` to the optimiser next to the model's (``fit`` does)
    and call ``loss_fn.to(device)`` with the model; ``centers`` follows ``.to()`` and is saved in
    ``state_dict()`` in both modes.
    """

    compares_with = "every class of the classifier"

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        center_weight: float = 0.003,
        alpha: float = 0.5,
        center_update: str = "rule",
        warn_if_empty: bool = False,
        reduction: str = "mean",
    ):
        super().__init__(num_classes, embedding_dim, warn_if_empty=warn_if_empty, reduction=reduction)
        self.center_weight = center_weight
        self.alpha = alpha
        check_choice("center_update", center_update, CENTER_UPDATES)
        self.center_update = center_update
        self.bias = nn.Parameter(torch.zeros(self.num_classes))
        centers = init_class_weights(self.num_classes, self.embedding_dim)
        if center_update == "gradient":
            self.centers = centers
        else:
            self.register_buffer("centers", centers.detach())

    @property
    def center_weight(self) -> float:
        """The survey's ``lambda >= 0``, the weight of the centre term."""
        return self._center_weight

    @center_weight.setter
    def center_weight(self, value: float) -> None:
        self._center_weight = check_non_negative("center_weight", value)

    @property
    def alpha(self) -> float:
        """The centres' update rate, ``0 <= alpha <= 1``."""
        return self._alpha

    @alpha.setter
    def alpha(self, value: float) -> None:
        alpha = check_non_negative("alpha", value)
        if alpha > 1:
            raise ValueError(f"alpha must be a number in [0, 1] (the centres' update rate), got {value!r}")
        self._alpha = alpha

    @property
    def class_centers(self) -> Tensor:
        """The centres ``(num_classes, embedding_dim)``, a detached copy, for plots."""
        return self.centers.detach().clone()

    def logits(self, embeddings: Tensor) -> Tensor:
        """``W x + b``, shape ``(batch, num_classes)``: the classifier's logits (its argmax is the prediction)."""
        bias = self.bias.to(device=embeddings.device, dtype=embeddings.dtype)
        return F.linear(embeddings, self.weight_like(embeddings), bias)

    def class_probabilities(self, embeddings: Tensor) -> Tensor:
        """Softmax of :meth:`logits`, rows sum to 1."""
        return torch.softmax(self.logits(embeddings), dim=1)

    def squared_distances_to_centers(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """``||x_i - c_{y_i}||^2`` per sample, shape ``(batch,)``."""
        centers = self.centers.to(device=embeddings.device, dtype=embeddings.dtype)
        return (embeddings - centers[labels]).pow(2).sum(dim=1)

    @torch.no_grad()
    def update_centers(self, embeddings: Tensor, labels: Tensor) -> None:
        """Wen et al.'s rule on one batch: ``c_j <- c_j - alpha sum_{y_i=j} (c_j - x_i) / (1 + n_j)``.

        Called by the forward pass in training mode; call it yourself to move the centres
        with a batch without computing the loss. Computed in the centres' dtype."""
        labels = self.check_class_labels(labels)
        if embeddings.shape != (labels.numel(), self.embedding_dim):
            raise ValueError(
                f"embeddings must have shape ({labels.numel()}, {self.embedding_dim}), got {tuple(embeddings.shape)}"
            )
        self._apply_center_rule(embeddings, labels)

    @torch.no_grad()
    def _apply_center_rule(self, embeddings: Tensor, labels: Tensor) -> None:
        labels = labels.to(self.centers.device)
        features = embeddings.detach().to(device=self.centers.device, dtype=self.centers.dtype)
        counts = torch.bincount(labels, minlength=self.num_classes).to(self.centers.dtype)
        summed = torch.zeros_like(self.centers).index_add_(0, labels, self.centers[labels] - features)
        self.centers.sub_(self.alpha * summed / (1.0 + counts).unsqueeze(1))

    def compute_loss(self, embeddings: Tensor, labels: Tensor, indices_tuple=None) -> LossTerms:
        labels = self.check_class_labels(labels)
        terms = F.cross_entropy(self.logits(embeddings), labels, reduction="none")
        if self.center_weight > 0:
            terms = terms + 0.5 * self.center_weight * self.squared_distances_to_centers(embeddings, labels)
        if self.training and self.center_update == "rule" and self.alpha > 0:
            self._apply_center_rule(embeddings, labels)  # after the terms: the loss sees the old centres
        return LossTerms(terms, what="sample")

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, center_weight={self.center_weight}, alpha={self.alpha}, "
            f"center_update={self.center_update!r}"
        )
