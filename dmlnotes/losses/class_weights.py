"""What losses with one learnable vector per class share: proxies, softmax weights, centres.

:class:`ClassWeightLoss` owns the ``(num_classes, embedding_dim)`` weight, its
initialisation, the checks of the class count and of the labels, the cast to the
batch's dtype and device, and the refusal of a miner's tuple (every sample is compared
with every class). :meth:`ClassWeightLoss.parameter_group` gives the weights their own
learning rate in an optimiser: proxy methods train them much faster than the network.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..checks import check_class_labels, check_integer, check_positive, check_positive_int
from .base import MetricLoss


def init_class_weights(num_classes: int, embedding_dim: int) -> nn.Parameter:
    """One learnable row per class, shape ``(num_classes, embedding_dim)``.

    Entries are i.i.d. normal with standard deviation ``1 / sqrt(embedding_dim)``: the
    directions are uniform on the sphere and the norms close to 1. (pytorch-metric-learning
    draws standard normals; the direction, which is all a normalised loss sees, has the
    same distribution.) Uses the global torch generator, so ``seed_everything`` fixes it.
    """
    return nn.Parameter(torch.randn(num_classes, embedding_dim) / math.sqrt(embedding_dim))


class ClassWeightLoss(MetricLoss):
    """Base of the losses with a learnable ``weight`` of one row per class.

    Args:
        num_classes: number of training classes (>= 2); labels must lie in ``0 .. num_classes-1``.
        embedding_dim: dimension of the embeddings (and of each class's row).
        warn_if_empty: warn when a batch is empty.
        rows_per_class: learnable rows per class (several proxies per class); row ``r``
            belongs to class ``r // rows_per_class`` (:attr:`row_classes`).

    The weight is this module's parameter: give ``loss_fn.parameters()`` (or
    :meth:`parameter_group`) to the optimiser and call ``loss_fn.to(device)`` with the model.
    """

    takes_indices_tuple = False
    compares_with = "every class's weight"

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        warn_if_empty: bool = False,
        reduction: str = "mean",
        rows_per_class: int = 1,
    ):
        super().__init__(warn_if_empty=warn_if_empty, reduction=reduction)
        self.num_classes = check_integer("num_classes", num_classes, minimum=2)
        self.embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        self.rows_per_class = check_positive_int("rows_per_class", rows_per_class)
        self.weight = init_class_weights(self.num_classes * self.rows_per_class, self.embedding_dim)

    @property
    def row_classes(self) -> Tensor:
        """The class of each row of the weight, shape ``(num_classes * rows_per_class,)``."""
        return torch.arange(self.weight.shape[0], device=self.weight.device) // self.rows_per_class

    def check_class_labels(self, labels: Tensor) -> Tensor:
        """Labels as class ids in ``0 .. num_classes-1`` (raises otherwise)."""
        return check_class_labels(labels, self.num_classes)

    def weight_like(self, embeddings: Tensor) -> Tensor:
        """The weight on the batch's device and dtype, after checking the batch's width.

        A differentiable cast: float64 or float16 batches work and gradients reach the parameter."""
        if embeddings.dim() != 2 or embeddings.shape[1] != self.embedding_dim:
            raise ValueError(
                f"embeddings must have shape (batch, {self.embedding_dim}), got shape {tuple(embeddings.shape)}"
            )
        return self.weight.to(device=embeddings.device, dtype=embeddings.dtype)

    def parameter_group(self, lr: float) -> dict:
        """``{"params": [weight...], "lr": lr}``, a parameter group for ``torch.optim``."""
        return {"params": [p for p in self.parameters() if p.requires_grad], "lr": check_positive("lr", lr)}

    def extra_repr(self) -> str:
        rows = f", rows_per_class={self.rows_per_class}" if self.rows_per_class > 1 else ""
        return f"num_classes={self.num_classes}, embedding_dim={self.embedding_dim}{rows}, {super().extra_repr()}"
