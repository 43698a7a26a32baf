"""Normalised softmax loss (survey section 2.2, eq. (19); Zhai & Wu 2018).

A classifier turned into a metric learner: drop the bias, L2-normalise the embeddings and
the class weights, and divide the cosine logits by a temperature. The class weights are
then proxies (survey section 2.1), and the embedding before the classifier is the metric
space used at test time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import check_positive
from ..distances import pairwise_cosine_similarity
from .base import LossTerms
from .class_weights import ClassWeightLoss


class NormSoftmaxLoss(ClassWeightLoss):
    r"""Normalised, bias-free softmax cross-entropy with a temperature, survey eq. (19).

    .. math::
        \ell(x) = -\log \frac{\exp(\hat x^\top \hat w_y / T)}{\sum_{c} \exp(\hat x^\top \hat w_c / T)}

    averaged over the batch, where ``x_hat`` and ``w_hat`` are the L2-normalised embedding
    and class weights (the sum includes the true class). The logits ``cos / T`` lie in
    ``[-1/T, 1/T]``. A small ``T`` widens that range so that the softmax can become
    confident although cosines differ little (random unit vectors in high dimension are
    nearly orthogonal); ``T = 1`` leaves it too flat to train well.

    Computed with ``F.cross_entropy`` (log-sum-exp), so loss and gradients stay finite in
    float32 down to ``T = 0.001`` (logits of +-1000), misclassified samples included.

    Defaults and sources: ``T = 0.05`` (Zhai & Wu 2018; also pytorch-metric-learning's
    ``NormalizedSoftmaxLoss``, which stores the weights transposed, as
    ``(embedding_dim, num_classes)``). Weights: one row per class, initialised as in
    :func:`~dmlnotes.losses.class_weights.init_class_weights`. Zhai & Wu also place a LayerNorm
    without affine parameters before the normalisation and train with class-balanced
    batches; those belong to the model and the sampler, not to the loss.

    The class weights are this module's parameters: give ``loss_fn.parameters()`` to the
    optimiser and call ``loss_fn.to(device)`` with the model.

    Args:
        num_classes: number of training classes (>= 2).
        embedding_dim: dimension of the embeddings.
        temperature: ``T > 0``; may be changed later (``loss_fn.temperature = 0.1``).
        warn_if_empty: warn when a batch is empty.
        reduction: ``"mean"`` (default), ``"mean_nonzero"`` or ``"sum"`` over the terms
            (see :class:`~dmlnotes.losses.base.MetricLoss`).

    Shapes:
        embeddings ``(batch, embedding_dim)``, labels ``(batch,)`` with values in
        ``0 .. num_classes-1`` -> scalar. ``last_stats.num_terms`` is the batch size.
        No miner: passing an ``indices_tuple`` raises ``ValueError``.
    """

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        temperature: float = 0.05,
        warn_if_empty: bool = False,
        reduction: str = "mean",
    ):
        super().__init__(num_classes, embedding_dim, warn_if_empty=warn_if_empty, reduction=reduction)
        self.temperature = temperature

    @property
    def temperature(self) -> float:
        """``T > 0``; the logits are ``cos / T``."""
        return self._temperature

    @temperature.setter
    def temperature(self, value: float) -> None:
        self._temperature = check_positive("temperature", value)

    @property
    def logit_scale(self) -> float:
        """The factor on the cosines, ``1 / T``."""
        return 1.0 / self.temperature

    @property
    def class_weights(self) -> Tensor:
        """Normalised class weights ``(num_classes, embedding_dim)``, detached, for plots."""
        return F.normalize(self.weight.detach(), dim=1)

    @property
    def proxies(self) -> Tensor:
        """Same as :attr:`class_weights`: by survey section 2.1 the class weights are the proxies."""
        return self.class_weights

    def cosines(self, embeddings: Tensor) -> Tensor:
        """``(batch, num_classes)`` cosines between the embeddings and the class weights."""
        return pairwise_cosine_similarity(embeddings, self.weight_like(embeddings))

    def logits(self, embeddings: Tensor) -> Tensor:
        """``cos / T``, shape ``(batch, num_classes)``, in ``[-1/T, 1/T]``."""
        return self.cosines(embeddings) * self.logit_scale

    def class_probabilities(self, embeddings: Tensor) -> Tensor:
        """Softmax of :meth:`logits`, rows sum to 1."""
        return torch.softmax(self.logits(embeddings), dim=1)

    def compute_loss(self, embeddings: Tensor, labels: Tensor, indices_tuple=None) -> Tensor:
        labels = self.check_class_labels(labels)
        terms = F.cross_entropy(self.logits(embeddings), labels, reduction="none")
        return LossTerms(terms, what="sample")

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, temperature={self.temperature}"


class InverseTemperatureSoftmax(NormSoftmaxLoss):
    """:class:`NormSoftmaxLoss` parameterised by the factor on the cosines, ``1 / T``.

    The factor is stored as given (``1 / (1 / x)`` rounding never changes it) and
    ``temperature`` stays in step. Subclasses name it as their paper does
    (``inverse_temperature_name``) and alias the property: the heated-up softmax's
    ``alpha``, NormFace's ``s``. With ``learnable=True`` the factor is a parameter,
    ``learned_factor`` (a 0-d tensor started at the given value), trained with the class
    weights; the properties then read and write it.
    """

    inverse_temperature_name = "inverse_temperature"

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        inverse_temperature: float,
        learnable: bool = False,
        warn_if_empty: bool = False,
        reduction: str = "mean",
    ):
        value = check_positive(self.inverse_temperature_name, inverse_temperature)
        super().__init__(
            num_classes, embedding_dim, temperature=1.0 / value, warn_if_empty=warn_if_empty, reduction=reduction
        )
        self.register_parameter("learned_factor", nn.Parameter(torch.tensor(float(value))) if learnable else None)
        self.inverse_temperature = value

    def _learned(self) -> Tensor | None:
        # None also while the base's __init__ sets the temperature, before the parameter exists.
        return getattr(self, "learned_factor", None)

    @property
    def inverse_temperature(self) -> float:
        """``1 / T > 0``, the factor on the cosines (its current value when learned)."""
        learned = self._learned()
        return self._inverse_temperature if learned is None else float(learned.detach())

    @inverse_temperature.setter
    def inverse_temperature(self, value: float) -> None:
        self._inverse_temperature = check_positive(self.inverse_temperature_name, value)
        learned = self._learned()
        if learned is not None:
            with torch.no_grad():
                learned.fill_(value)

    @property
    def temperature(self) -> float:
        """``T = 1 / (the factor)``; setting it sets the factor."""
        return 1.0 / self.inverse_temperature

    @temperature.setter
    def temperature(self, value: float) -> None:
        self.inverse_temperature = 1.0 / check_positive("temperature", value)

    @property
    def logit_scale(self) -> float | Tensor:
        """The factor as the logits use it: the parameter itself when it is learned."""
        learned = self._learned()
        return self._inverse_temperature if learned is None else learned
