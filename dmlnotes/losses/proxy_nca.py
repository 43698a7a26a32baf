"""Proxy-NCA loss (survey section 1.8, eqs. (12)-(15); Movshovitz-Attias et al. 2017).

Instead of comparing samples with each other, each sample is compared with a small set of
learned points, the *proxies*, one per class. A batch of ``n`` samples then costs ``n x C``
distances rather than ``n^2`` pairs or ``n^3`` triplets, and no mining is needed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..checks import check_positive
from ..distances import Distance, SquaredEuclideanDistance, check_distance
from .base import LossTerms
from .class_weights import ClassWeightLoss


class ProxyNCALoss(ClassWeightLoss):
    r"""Proxy-NCA, survey eq. (13) (paper form) or eq. (14) (softmax form).

    With ``d^2`` the squared Euclidean distance and ``p_c`` the proxy of class ``c``,

    .. math::
        \ell(x) = -\log \frac{\exp(-s\, d^2(x, p_y))}{\sum_{z \ne y} \exp(-s\, d^2(x, p_z))}
        \qquad \text{(13)}

    averaged over the batch. ``include_positive_in_denominator=True`` sums over all ``z``
    (eq. (14)): a cross-entropy whose class probabilities are eq. (15),
    ``q(p_i|x) = softmax_i(-s d^2(x, p))`` (:meth:`class_probabilities`). With embeddings
    and proxies of a fixed norm, ``-d^2 = 2 x.p - const``, so eq. (14) is a bias-free
    softmax classifier with logits ``2 s x.p`` (eqs. (16)-(17)): the class weights of a
    normalised softmax are proxies.

    Conventions:
        * Static assignment (``proxies_per_class=1``, default): proxy ``c`` belongs to
          class ``c``, so labels must be in ``0 .. num_classes-1``.
        * Dynamic assignment (``proxies_per_class=k > 1``), eq. (12): each class owns ``k``
          proxies and a sample's proxy is the nearest of its class's,
          ``p(x) = argmin_{p in P_y} d^2(x, p)``, chosen anew at every step; the proxies of
          the other classes are the negatives, and the class's other proxies take no part.
          (Eq. (12) takes the argmin over all proxies; with labelled proxies only the own
          class's can be the positive, as in the multi-proxy losses that followed.)
        * ``distance=SquaredEuclideanDistance(normalize_embeddings=True)`` (default, the
          paper's setting): embeddings and proxies are L2-normalised, so ``d^2 = 2 - 2 cos``
          lies in ``[0, 4]``.
        * The paper's form (13) excludes the positive from the denominator, so it is not a
          log-probability and goes negative: on the unit sphere its minimum is
          ``log(C - 1) - 4 s``, which is below 0 for ``C - 1 < exp(4 s)`` (e.g. ``-4`` for
          two classes at ``s = 1``: the sample on its proxy, the other proxy opposite); with
          unnormalised embeddings (``SquaredEuclideanDistance()``) it is unbounded below.
          Only differences matter for training.
          The softmax form (14) is always >= 0.
        * ``scale`` ``s`` multiplies the squared distances (an inverse temperature);
          default 1, i.e. eq. (13) as written, like pytorch-metric-learning's
          ``ProxyNCALoss`` (``softmax_scale=1``). Scaling both vectors to norm ``r`` instead, as the
          ``dichotomies/proxy-nca`` reimplementation does (``r = 3``), is ``s = r^2``.

    Training: the proxies are this module's parameters, so give ``loss_fn.parameters()``
    to the optimiser next to the model's. They usually need a much larger learning rate
    than the network (reimplementations use about 100x, e.g. 5.0 against 0.045 with Adam
    in ``dichotomies/proxy-nca``); call ``loss_fn.to(device)`` with the model.

    Args:
        num_classes: number of training classes ``C`` (>= 2).
        embedding_dim: dimension of the embeddings.
        include_positive_in_denominator: ``False``: eq. (13); ``True``: eq. (14).
        distance: a ``dmlnotes.distances.Distance`` between embeddings and proxies (default
            ``SquaredEuclideanDistance(normalize_embeddings=True)``); its
            ``normalize_embeddings`` normalises both. Logits are ``-s d`` (``s * sim`` for a similarity).
        scale: ``s > 0``, multiplies ``d^2``.
        warn_if_empty: warn when a batch is empty.
        reduction: ``"mean"`` (default), ``"mean_nonzero"`` or ``"sum"`` over the terms
            (see :class:`~dmlnotes.losses.base.MetricLoss`).
        proxies_per_class: ``1`` for the static assignment, ``k > 1`` for eq. (12)'s
            dynamic one (``weight`` then has ``k`` rows per class, class-major).

    Shapes:
        embeddings ``(batch, embedding_dim)``, labels ``(batch,)`` -> scalar.
        ``last_stats.num_terms`` is the batch size. No miner: passing an
        ``indices_tuple`` raises ``ValueError``.
    """

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        include_positive_in_denominator: bool = False,
        distance: Distance | None = None,
        scale: float = 1.0,
        warn_if_empty: bool = False,
        reduction: str = "mean",
        proxies_per_class: int = 1,
    ):
        super().__init__(
            num_classes,
            embedding_dim,
            warn_if_empty=warn_if_empty,
            reduction=reduction,
            rows_per_class=proxies_per_class,
        )
        self.include_positive_in_denominator = bool(include_positive_in_denominator)
        self.distance = check_distance(distance, SquaredEuclideanDistance(normalize_embeddings=True))
        self.scale = check_positive("scale", scale)

    @property
    def proxies(self) -> Tensor:
        """The proxies as the loss sees them (normalised if the distance normalises), detached, for plots."""
        proxies = self.weight.detach()
        return F.normalize(proxies, dim=1) if self.distance.normalize_embeddings else proxies.clone()

    @property
    def proxies_per_class(self) -> int:
        return self.rows_per_class

    def distances(self, embeddings: Tensor) -> Tensor:
        """``(batch, num_proxies)`` matrix of ``d(x_i, p_c)`` (``d^2`` by default, after normalisation if set)."""
        return self.distance(embeddings, self.weight_like(embeddings))

    def logits(self, embeddings: Tensor) -> Tensor:
        """``-s d(x_i, p_c)``, shape ``(batch, num_proxies)``: the proxies' softmax logits."""
        return self.distance.as_logits(self.distances(embeddings), self.scale)

    def class_probabilities(self, embeddings: Tensor) -> Tensor:
        """Eq. (15): ``q(p_c|x) = exp(-s d^2(x, p_c)) / sum_j exp(-s d^2(x, p_j))``, rows sum to 1."""
        return torch.softmax(self.logits(embeddings), dim=1)

    compares_with = "every proxy"

    def compute_loss(self, embeddings: Tensor, labels: Tensor, indices_tuple=None) -> Tensor:
        labels = self.check_class_labels(labels)
        logits = self.logits(embeddings)
        if self.rows_per_class == 1:
            assigned = labels
            is_own_proxy = (
                F.one_hot(labels, self.num_classes).bool() if not self.include_positive_in_denominator else None
            )
        else:
            is_own_proxy = self.row_classes.to(labels.device).unsqueeze(0) == labels.unsqueeze(1)
            assigned = self.assigned_proxies(logits.detach(), is_own_proxy)
            if self.include_positive_in_denominator:  # the class's other proxies are neither positive nor negative
                is_own_proxy = is_own_proxy.scatter(1, assigned.unsqueeze(1), False)
        positive = logits.gather(1, assigned.unsqueeze(1)).squeeze(1)
        if is_own_proxy is not None:
            logits = logits.masked_fill(is_own_proxy, float("-inf"))
        terms = torch.logsumexp(logits, dim=1) - positive
        return LossTerms(terms, what="sample")

    @staticmethod
    def assigned_proxies(logits: Tensor, is_own_proxy: Tensor) -> Tensor:
        """Eq. (12): each sample's nearest proxy of its class (the largest logit among them)."""
        return logits.masked_fill(~is_own_proxy, float("-inf")).argmax(dim=1)

    def assign(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """Index of the proxy each sample is assigned to (its class's proxy when static), for plots."""
        labels = self.check_class_labels(labels).to(embeddings.device)
        if self.rows_per_class == 1:
            return labels
        with torch.no_grad():
            is_own_proxy = self.row_classes.to(embeddings.device).unsqueeze(0) == labels.unsqueeze(1)
            return self.assigned_proxies(self.logits(embeddings), is_own_proxy)

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, include_positive_in_denominator={self.include_positive_in_denominator}, "
            f"scale={self.scale}, distance={self.distance}"
        )
