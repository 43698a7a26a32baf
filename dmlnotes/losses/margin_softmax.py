"""Softmaxes on the sphere with a scale and an additive margin (L2-softmax, NormFace, CosFace, ArcFace).

All four are a classifier's cross-entropy whose logits are cosines times a scale ``s``:
L2-softmax fixes only the feature norm; NormFace also normalises the class weights (it is
:class:`~dmlnotes.losses.norm_softmax.NormSoftmaxLoss` with ``s = 1/T``); CosFace and ArcFace
then lower the target logit by a margin, in cosine (``cos θ - m``) or in angle
(``cos(θ + m)``), so that a sample must beat the other classes by that margin.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import check_non_negative, check_positive
from .base import LossTerms
from .class_weights import ClassWeightLoss
from .norm_softmax import InverseTemperatureSoftmax


class L2SoftmaxLoss(ClassWeightLoss):
    r"""L2-constrained softmax (Ranjan, Castillo, Chellappa 2017): features rescaled to norm ``alpha``.

    .. math::
        \ell(x) = -\log \frac{\exp(\alpha \hat x^\top w_y + b_y)}{\sum_c \exp(\alpha \hat x^\top w_c + b_c)}

    The paper puts an "L2-normalise and scale" layer before an ordinary fully connected
    softmax layer, so only the features are normalised: the class weights ``w_c`` keep their
    norms and there is a bias ``b_c`` (``bias=False`` drops it). Their lower bound on the
    scale for a target probability ``p`` with ``C`` classes is
    ``alpha_low = log(p (C - 2) / (1 - p))`` (:meth:`alpha_lower_bound`; 9.1 for ``C = 1000``,
    ``p = 0.9``); default ``alpha = 16``, chosen here above that bound, not tuned.
    pytorch-metric-learning has no L2-softmax.

    Args:
        num_classes, embedding_dim, warn_if_empty, reduction: as in
            :class:`~dmlnotes.losses.class_weights.ClassWeightLoss`.
        alpha: the feature norm, ``> 0``.
        bias: learn a bias per class (the paper's fully connected layer has one).

    Shapes: embeddings ``(batch, embedding_dim)``, labels ``(batch,)`` -> scalar; one term per sample.
    """

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        alpha: float = 16.0,
        bias: bool = True,
        warn_if_empty: bool = False,
        reduction: str = "mean",
    ):
        super().__init__(num_classes, embedding_dim, warn_if_empty=warn_if_empty, reduction=reduction)
        self.alpha = alpha
        self.bias = nn.Parameter(torch.zeros(num_classes)) if bias else None

    @property
    def alpha(self) -> float:
        """The norm the features are scaled to."""
        return self._alpha

    @alpha.setter
    def alpha(self, value: float) -> None:
        self._alpha = check_positive("alpha", value)

    @staticmethod
    def alpha_lower_bound(num_classes: int, probability: float = 0.9) -> float:
        """Ranjan et al.'s ``log(p (C - 2) / (1 - p))``: below it the softmax cannot reach ``p``."""
        if not 0.0 < probability < 1.0:
            raise ValueError(f"probability must lie strictly between 0 and 1, got {probability!r}")
        return math.log(probability * (num_classes - 2) / (1.0 - probability))

    def logits(self, embeddings: Tensor) -> Tensor:
        """``alpha x_hat . w_c + b_c``, shape ``(batch, num_classes)``."""
        weight = self.weight_like(embeddings)
        logits = F.normalize(embeddings, dim=1) @ weight.T * self.alpha
        if self.bias is not None:
            logits = logits + self.bias.to(dtype=embeddings.dtype, device=embeddings.device)
        return logits

    def compute_loss(self, embeddings: Tensor, labels: Tensor, indices_tuple=None) -> LossTerms:
        labels = self.check_class_labels(labels)
        return LossTerms(F.cross_entropy(self.logits(embeddings), labels, reduction="none"), what="sample")

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, alpha={self.alpha}, bias={self.bias is not None}"


class NormFaceLoss(InverseTemperatureSoftmax):
    r"""NormFace (Wang, Xiang, Cheng, Yuille 2017): normalised features and weights, scale ``s``.

    .. math::
        \ell(x) = -\log \frac{\exp(s \cos\theta_y)}{\sum_c \exp(s \cos\theta_c)}

    with ``cos θ_c`` the cosine between the embedding and class weight ``c``. This is
    :class:`~dmlnotes.losses.norm_softmax.NormSoftmaxLoss` (Zhai & Wu's normalised softmax)
    parameterised by the scale ``s = 1 / T`` instead of the temperature; ``temperature``
    stays available and the two are kept in step. NormFace bounds the loss from below by
    ``log(1 + (C - 1) exp(-C s / (C - 1)))`` for ``C`` classes (every sample on its class
    weight, the weights a regular simplex), so a small ``s`` cannot train. The paper can also
    learn ``s`` (a scale layer after the cosines): ``learn_scale=True`` makes it a parameter,
    ``learned_factor``, started at ``scale`` and trained with the class weights, and
    ``loss_fn.scale`` then reads its current value. Default ``s = 16``, chosen here (not
    tuned); ``T = 0.05`` of NormSoftmaxLoss is ``s = 20``.

    Subclasses change only the target cosine (:meth:`target_cosine`): CosFace and ArcFace.
    :meth:`logits` without labels gives the plain scaled cosines (what a test-time
    classifier uses); with labels, the target logits carry the margin.

    Args:
        num_classes, embedding_dim, warn_if_empty, reduction: as in
            :class:`~dmlnotes.losses.norm_softmax.NormSoftmaxLoss`.
        scale: ``s > 0``; may be changed later (``loss_fn.scale = 30``), as may ``temperature``.
        learn_scale: train ``s`` with the class weights, starting from ``scale``.

    Shapes: embeddings ``(batch, embedding_dim)``, labels ``(batch,)`` -> scalar; one term per sample.
    """

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        scale: float = 16.0,
        learn_scale: bool = False,
        warn_if_empty: bool = False,
        reduction: str = "mean",
    ):
        super().__init__(
            num_classes, embedding_dim, scale, learnable=learn_scale, warn_if_empty=warn_if_empty, reduction=reduction
        )

    inverse_temperature_name = "scale"
    scale = InverseTemperatureSoftmax.inverse_temperature  # ``s = 1 / T``, the paper's name

    def target_cosine(self, cosines: Tensor) -> Tensor:
        """The target class's cosine after the margin; NormFace has none."""
        return cosines

    def logits(self, embeddings: Tensor, labels: Tensor | None = None) -> Tensor:
        """``s cos θ``; with ``labels``, the target column replaced by ``s target_cosine(cos θ_y)``."""
        cosines = self.cosines(embeddings)
        if labels is not None:
            target = labels.to(cosines.device).unsqueeze(1)
            cosines = cosines.scatter(1, target, self.target_cosine(cosines.gather(1, target)))
        return cosines * self.logit_scale

    def compute_loss(self, embeddings: Tensor, labels: Tensor, indices_tuple=None) -> LossTerms:
        labels = self.check_class_labels(labels)
        has_margin = type(self).target_cosine is not NormFaceLoss.target_cosine  # else skip gather and scatter
        terms = F.cross_entropy(self.logits(embeddings, labels if has_margin else None), labels, reduction="none")
        return LossTerms(terms, what="sample")

    def extra_repr(self) -> str:
        learned = ", learn_scale=True" if self.learned_factor is not None else ""
        return f"{ClassWeightLoss.extra_repr(self)}, scale={self.scale}{learned}"


class CosFaceLoss(NormFaceLoss):
    r"""CosFace / AM-softmax (Wang et al. 2018; Wang, Cheng, Liu, Liu 2018): additive cosine margin.

    .. math::
        \ell(x) = -\log \frac{e^{s (\cos\theta_y - m)}}{e^{s (\cos\theta_y - m)} + \sum_{c \ne y} e^{s \cos\theta_c}}

    Defaults ``s = 64``, ``m = 0.35`` (CosFace's face-recognition settings). Matches
    pytorch-metric-learning's ``CosFaceLoss(margin=m, scale=s)``, which stores the weights
    transposed, ``(embedding_dim, num_classes)``. Stable at any scale: the margin is a
    subtraction and the cross-entropy is a log-sum-exp.

    Args:
        margin: ``m >= 0``, in cosine units.
        scale: ``s > 0``.
        (others as in :class:`NormFaceLoss`)
    """

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        margin: float = 0.35,
        scale: float = 64.0,
        warn_if_empty: bool = False,
        reduction: str = "mean",
    ):
        super().__init__(num_classes, embedding_dim, scale=scale, warn_if_empty=warn_if_empty, reduction=reduction)
        self.margin = margin

    @property
    def margin(self) -> float:
        return self._margin

    @margin.setter
    def margin(self, value: float) -> None:
        self._margin = check_non_negative("margin", value)

    def target_cosine(self, cosines: Tensor) -> Tensor:
        return cosines - self.margin

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, margin={self.margin}"


class ArcFaceLoss(NormFaceLoss):
    r"""ArcFace (Deng, Guo, Xue, Zafeiriou 2019): additive angular margin, target logit ``s cos(θ_y + m)``.

    ``cos(θ + m) = cos θ cos m - sin θ sin m`` with ``sin θ = sqrt(1 - cos² θ)`` (no ``acos``).
    Past ``θ = π - m``, ``cos(θ + m)`` would rise again and reward a worse angle; as in the
    authors' insightface code the target cosine is then ``cos θ - m sin m`` (``th = cos(π - m)``,
    ``mm = sin(π - m) m``), which continues it monotonically. ``easy_margin=True`` applies the
    margin only where ``cos θ > 0`` (plain ``cos θ`` elsewhere), insightface's other option.

    Stability: ``1 - cos²`` is clamped below at the dtype's machine epsilon before the square
    root, so at ``θ = 0`` or ``π`` exactly (a feature on its class weight or opposite it) values
    and gradients stay finite in float16..float64; the clamp changes ``sin θ`` only where
    ``cos θ`` rounds to ``±1``.

    Defaults ``s = 64``, ``m = 0.5`` rad (the paper's). pytorch-metric-learning's
    ``ArcFaceLoss`` takes the margin in degrees (its default ``28.6`` is 0.4992 rad;
    ``math.degrees(0.5)`` gives 0.5 exactly), stores the weights transposed and computes
    ``cos(acos(cos θ) + m)`` with the same fallback: same values, but its ``acos`` has an
    infinite derivative at ``θ = 0`` and ``π``.

    Args:
        margin: ``m`` in radians, ``0 <= m < π``.
        scale: ``s > 0``.
        easy_margin: insightface's ``easy_margin`` instead of the fallback.
        (others as in :class:`NormFaceLoss`)
    """

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        margin: float = 0.5,
        scale: float = 64.0,
        easy_margin: bool = False,
        warn_if_empty: bool = False,
        reduction: str = "mean",
    ):
        super().__init__(num_classes, embedding_dim, scale=scale, warn_if_empty=warn_if_empty, reduction=reduction)
        self.margin = margin
        self.easy_margin = bool(easy_margin)

    @property
    def margin(self) -> float:
        """``m`` in radians."""
        return self._margin

    @margin.setter
    def margin(self, value: float) -> None:
        margin = check_non_negative("margin", value)
        if margin >= math.pi:
            raise ValueError(f"margin must be below pi (radians), got {value!r}")
        self._margin = margin

    def target_cosine(self, cosines: Tensor) -> Tensor:
        m = self.margin
        eps = torch.finfo(cosines.dtype).eps
        sines = torch.sqrt((1.0 - cosines * cosines).clamp(min=eps, max=1.0))
        shifted = cosines * math.cos(m) - sines * math.sin(m)
        if self.easy_margin:
            return torch.where(cosines > 0, shifted, cosines)
        return torch.where(cosines > math.cos(math.pi - m), shifted, cosines - math.sin(math.pi - m) * m)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, margin={self.margin}, easy_margin={self.easy_margin}"
