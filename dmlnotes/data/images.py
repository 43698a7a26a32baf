"""A data set of image files read on demand (CUB-200-2011, Omniglot).

Images are decoded with Pillow (a matplotlib dependency), so the loaders work without
torchvision. Colour images are resized and centre-cropped (randomly cropped and flipped
with ``augment``) and normalised with the ImageNet mean and standard deviation that
pretrained backbones expect; grayscale images are resized and scaled to [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .dataset import as_label_tensor

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


class ImageFileDataset:
    """Image files with labels; ``get_batch(indices)`` decodes just those files.

    Args:
        paths: one image file per sample.
        labels: class id per sample (``0 .. C-1``).
        class_names: one name per class id.
        image_size: side of the square output image.
        grayscale: one channel in [0, 1] (white strokes on black with ``invert``);
            otherwise RGB normalised with the ImageNet statistics.
        augment: random crop of 80-100 % of the image and horizontal flip (training).
        seed: seed of the augmentation's generator.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        labels,
        class_names: Sequence[str],
        image_size: int = 224,
        grayscale: bool = False,
        invert: bool = False,
        augment: bool = False,
        name: str = "images",
        seed: int = 0,
    ):
        self.paths = [Path(p) for p in paths]
        self.labels = as_label_tensor(labels)
        if len(self.paths) != len(self.labels):
            raise ValueError(f"paths and labels disagree on the number of samples: {len(self.paths)} and {len(self.labels)}")
        self.class_names = list(class_names)
        self.image_size = int(image_size)
        self.grayscale = grayscale
        self.invert = invert
        self.augment = augment
        self.name = name
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        return f"ImageFileDataset(name={self.name!r}, samples={len(self)}, classes={self.num_classes}, image_size={self.image_size})"

    @property
    def num_classes(self) -> int:
        return int(torch.unique(self.labels).numel())

    def get_batch(self, indices: Sequence[int] | Tensor) -> tuple[Tensor, Tensor]:
        index = [int(i) for i in torch.as_tensor(indices, dtype=torch.long)]
        images = torch.from_numpy(np.stack([self.load(self.paths[i]) for i in index]))
        return images, self.labels[torch.as_tensor(index, dtype=torch.long)]

    def load(self, path: Path) -> np.ndarray:
        """One image as a float32 array of shape (channels, size, size)."""
        from PIL import Image

        with Image.open(path) as image:
            image = image.convert("L" if self.grayscale else "RGB")
            image = self._crop(image)
            image = image.resize((self.image_size, self.image_size), Image.BILINEAR)
            if self.augment and self.rng.random() < 0.5:
                image = image.transpose(Image.FLIP_LEFT_RIGHT)
            array = np.asarray(image, dtype=np.float32) / 255.0
        if self.grayscale:
            return (1.0 - array if self.invert else array)[None]
        return ((array - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1).copy()

    def _crop(self, image):
        width, height = image.size
        side = min(width, height)
        if self.augment:
            side = int(side * self.rng.uniform(0.8, 1.0))
            left = int(self.rng.integers(0, width - side + 1))
            top = int(self.rng.integers(0, height - side + 1))
        else:
            left, top = (width - side) // 2, (height - side) // 2
        return image.crop((left, top, left + side, top + side))
