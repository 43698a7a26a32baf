"""Embedding networks sized for a laptop CPU, and an optional ImageNet backbone.

Every model maps a batch of inputs to embeddings of ``embedding_dim`` (2 for plots);
with ``normalize=True`` the outputs lie on the unit sphere (the unit circle in 2-D).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .checks import check_positive_int


def _check_dim(embedding_dim: int) -> int:
    return check_positive_int("embedding_dim", embedding_dim)


class MLPEmbedding(nn.Module):
    """A multilayer perceptron: ``in_features -> hidden... -> embedding_dim``.

    For flat inputs such as the 64 pixels of the digits data set.
    """

    def __init__(
        self, in_features: int, embedding_dim: int = 2, hidden: Sequence[int] = (128, 64), normalize: bool = False
    ):
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, _check_dim(embedding_dim)))
        self.net = nn.Sequential(*layers)
        self.embedding_dim = embedding_dim
        self.normalize = normalize

    def forward(self, inputs: Tensor) -> Tensor:
        embeddings = self.net(inputs.flatten(1))
        return F.normalize(embeddings, dim=1) if self.normalize else embeddings


class ConvEmbedding(nn.Module):
    """A small CNN for grayscale images (28 x 28 glyphs, Omniglot; any size works).

    Three blocks of 3x3 convolution, batch norm, ReLU and 2x2 max pooling, then global
    average pooling and a linear layer to ``embedding_dim``. About 100k parameters at
    the default width: a few milliseconds per batch of 64 on a laptop CPU.
    """

    def __init__(self, embedding_dim: int = 64, in_channels: int = 1, width: int = 32, normalize: bool = False):
        super().__init__()

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)
            )

        self.features = nn.Sequential(
            block(in_channels, width),
            block(width, 2 * width),
            block(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(4 * width, _check_dim(embedding_dim))
        self.embedding_dim = embedding_dim
        self.normalize = normalize
        # Channels-last tensors: the same arithmetic, and about 1.5x faster training on a CPU
        # (oneDNN's convolution and pooling prefer this layout).
        self.to(memory_format=torch.channels_last)

    def forward(self, images: Tensor) -> Tensor:
        if images.dim() != 4:
            raise ValueError(f"images must have shape (batch, channels, height, width), got {tuple(images.shape)}")
        embeddings = self.head(self.features(images.contiguous(memory_format=torch.channels_last)))
        return F.normalize(embeddings, dim=1) if self.normalize else embeddings


class BackboneEmbedding(nn.Module):
    """Any feature extractor followed by the Zhai & Wu (2018) head.

    ``features -> LayerNorm (no affine) -> optional bias-free linear -> optional L2``.
    ``backbone`` maps images to ``(batch, feature_dim)``. Used with a torchvision
    ResNet-50 for CUB-200-2011 (:func:`resnet50_embedding`) and with a tiny CNN in tests.
    """

    def __init__(
        self, backbone: nn.Module, feature_dim: int, embedding_dim: int | None = None, normalize: bool = False
    ):
        super().__init__()
        self.backbone = backbone
        self.layer_norm = nn.LayerNorm(feature_dim, elementwise_affine=False)
        self.projection = (
            None
            if embedding_dim in (None, feature_dim)
            else nn.Linear(feature_dim, _check_dim(embedding_dim), bias=False)
        )
        self.embedding_dim = feature_dim if self.projection is None else embedding_dim
        self.normalize = normalize

    def forward(self, images: Tensor) -> Tensor:
        embeddings = self.layer_norm(self.backbone(images).flatten(1))
        if self.projection is not None:
            embeddings = self.projection(embeddings)
        return F.normalize(embeddings, dim=1) if self.normalize else embeddings

    def new_parameters(self) -> list[nn.Parameter]:
        """Parameters not pretrained (the warm-up epoch trains only these)."""
        return [] if self.projection is None else list(self.projection.parameters())


def resnet50_embedding(
    embedding_dim: int | None = 512, pretrained: bool = True, normalize: bool = False
) -> BackboneEmbedding:
    """ImageNet ResNet-50 with global average pooling and the Zhai & Wu head.

    Needs torchvision and, with ``pretrained``, its ImageNet weights already in the
    torch hub cache (``~/.cache/torch/hub/checkpoints``) or downloadable. Never needed by
    the default lessons, which run on small CNNs.
    """
    try:
        import torchvision
    except Exception as error:  # torchvision missing, or built against another torch
        raise ImportError(
            "resnet50_embedding needs torchvision matching your torch build: "
            "pip install torchvision (see https://pytorch.org/get-started/locally/)"
        ) from error
    weights = torchvision.models.ResNet50_Weights.IMAGENET1K_V2 if pretrained else None
    try:
        resnet = torchvision.models.resnet50(weights=weights)
    except Exception as error:
        raise RuntimeError(
            "could not load the ImageNet weights of ResNet-50; put resnet50-11ad3fa6.pth in "
            "~/.cache/torch/hub/checkpoints or run once with internet access"
        ) from error
    feature_dim = resnet.fc.in_features
    resnet.fc = nn.Identity()
    return BackboneEmbedding(resnet, feature_dim, embedding_dim, normalize)
