"""A tiny CUB-200-2011 folder and a tiny backbone for the sweep's CUB path on the CPU."""

import pytest
from PIL import Image
from torch import nn

from dmlnotes.models import BackboneEmbedding


def make_cub(root, classes=(1, 2, 3, 101, 102, 103), per_class=3):
    """A CUB_200_2011 folder in the standard layout with small flat-colour images."""
    folder = root / "CUB_200_2011"
    lines, labels = [], []
    image_id = 0
    for c in classes:
        name = f"{c:03d}.Bird_{c}"
        (folder / "images" / name).mkdir(parents=True)
        for k in range(per_class):
            image_id += 1
            relative = f"{name}/Bird_{c}_{k}.jpg"
            colour = ((37 * c) % 256, (11 * c + 40 * k) % 256, (5 * c) % 256)
            Image.new("RGB", (24 + 4 * k, 20), color=colour).save(folder / "images" / relative, format="PNG")
            lines.append(f"{image_id} {relative}")
            labels.append(f"{image_id} {c}")
    (folder / "images.txt").write_text("\n".join(lines) + "\n")
    (folder / "image_class_labels.txt").write_text("\n".join(labels) + "\n")
    return folder


@pytest.fixture
def cub_folder(tmp_path):
    return make_cub(tmp_path)


@pytest.fixture
def tiny_backbone_factory():
    """``embedding_dim -> model`` in place of the ImageNet ResNet-50: one small convolution."""

    def factory(dim):
        backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        return BackboneEmbedding(backbone, feature_dim=4, embedding_dim=dim)

    return factory
