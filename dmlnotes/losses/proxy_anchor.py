"""Proxy-Anchor loss (Kim, Kim, Cho, Kwak 2020, "Proxy Anchor Loss for Deep Metric Learning").

A proxy method like Proxy-NCA (survey 1.8), but each proxy is an *anchor*: it is compared
with every sample of the batch at once, so the gradient of one sample depends on the other
samples (as in the pair losses) while a batch still costs only ``n x C`` similarities.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..checks import check_non_negative, check_positive
from ..distances import pairwise_cosine_similarity
from .base import LossTerms
from .class_weights import ClassWeightLoss


class ProxyAnchorLoss(ClassWeightLoss):
    r"""Proxy-Anchor: every proxy pulls its class's samples and pushes the others away.

    With ``s(x, p)`` the cosine similarity, ``P`` all proxies, ``P+`` the proxies whose
    class has a sample in the batch, ``X_p+`` the samples of ``p``'s class and ``X_p-`` the
    others (Kim et al. 2020),

    .. math::
        \ell = \frac{1}{|P^+|} \sum_{p \in P^+} \log\Big(1 + \sum_{x \in X_p^+} e^{-\alpha (s(x,p) - \delta)}\Big)
             + \frac{1}{|P|} \sum_{p \in P} \log\Big(1 + \sum_{x \in X_p^-} e^{\alpha (s(x,p) + \delta)}\Big).

    Conventions:
        * Cosine similarity: embeddings and proxies are L2-normalised, whatever their norm.
        * ``alpha = 32`` and ``margin`` ``delta = 0.1`` (in cosine units) are the paper's
          defaults (technical notes), as in pytorch-metric-learning's ``ProxyAnchorLoss``.
        * Terms: one per proxy, ``t_p = (|P| / |P+|) pos_p + neg_p`` (``pos_p = 0`` for a
          proxy without positives), so ``reduction="mean"`` (default) is the paper's loss
          above, equal to pytorch-metric-learning's; ``"sum"`` is ``|P|`` times it.
        * ``log(1 + sum exp)`` is a log-sum-exp with a zero logit added, so ``alpha = 32``
          (exponents up to ``+-35``) stays finite in float16; half-precision batches are
          computed in float32 and the loss cast back.

    Training: the proxies are this module's ``weight``; the paper trains them with a much
    larger learning rate than the network (100x in the reference code): give the optimiser
    ``loss_fn.parameter_group(lr=100 * lr)`` beside the model's parameters, and call
    ``loss_fn.to(device)`` with the model.
    Initialisation: the reference code draws the proxies with ``kaiming_normal_(mode="fan_out")``
    (normal, standard deviation ``sqrt(2 / embedding_dim)``), as pytorch-metric-learning
    does; the class-weight base draws them normal with standard deviation
    ``1 / sqrt(embedding_dim)`` (:func:`~dmlnotes.losses.class_weights.init_class_weights`).
    Both are isotropic, so the directions, which are all a cosine loss sees, have the same
    (uniform) distribution.

    Args:
        num_classes: number of training classes ``C`` (>= 2).
        embedding_dim: dimension of the embeddings.
        alpha: ``alpha > 0``, the scale of the similarities.
        margin: ``delta >= 0``.
        warn_if_empty: warn when a batch is empty.
        reduction: ``"mean"`` (default, the paper), ``"mean_nonzero"`` or ``"sum"`` over the
            per-proxy terms (see :class:`~dmlnotes.losses.base.MetricLoss`).

    Shapes:
        embeddings ``(batch, embedding_dim)``, labels ``(batch,)`` -> scalar.
        ``last_stats.num_terms`` is ``num_classes``. No miner: an ``indices_tuple`` raises ``ValueError``.
    """

    compares_with = "every proxy"

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        alpha: float = 32.0,
        margin: float = 0.1,
        warn_if_empty: bool = False,
        reduction: str = "mean",
    ):
        super().__init__(num_classes, embedding_dim, warn_if_empty=warn_if_empty, reduction=reduction)
        self.alpha = check_positive("alpha", alpha)
        self.margin = check_non_negative("margin", margin)

    @property
    def proxies(self) -> Tensor:
        """The normalised proxies, detached, for plots."""
        return F.normalize(self.weight.detach(), dim=1)

    def similarities(self, embeddings: Tensor) -> Tensor:
        """``(batch, num_classes)`` cosine similarities ``s(x_i, p_c)``."""
        return pairwise_cosine_similarity(embeddings, self.weight_like(embeddings))

    def compute_loss(self, embeddings: Tensor, labels: Tensor, indices_tuple=None) -> LossTerms:
        labels = self.check_class_labels(labels).to(embeddings.device)
        similarity = self.similarities(embeddings)
        if similarity.dtype in (torch.float16, torch.bfloat16):  # exponents of +-35 lose their digits in half
            similarity = similarity.float()
        is_positive = F.one_hot(labels, self.num_classes).bool()  # (batch, classes)
        # log(1 + sum exp z) = logsumexp over the proxy's column with a zero logit added.
        zero_row = similarity.new_zeros(1, self.num_classes)
        positive_logits = (-self.alpha * (similarity - self.margin)).masked_fill(~is_positive, float("-inf"))
        negative_logits = (self.alpha * (similarity + self.margin)).masked_fill(is_positive, float("-inf"))
        positive = torch.logsumexp(torch.cat([zero_row, positive_logits]), dim=0)  # 0 without positives
        negative = torch.logsumexp(torch.cat([zero_row, negative_logits]), dim=0)
        num_with_positives = int(is_positive.any(dim=0).sum())
        terms = positive * (self.num_classes / num_with_positives) + negative
        return LossTerms(terms.to(embeddings.dtype), what="proxy")

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, alpha={self.alpha}, margin={self.margin}"
