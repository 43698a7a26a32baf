"""A data set of image files read on demand (CUB-200-2011, Omniglot).

Images are decoded with Pillow (a matplotlib dependency), so the loaders work without
torchvision. Colour images are resized and centre-cropped (randomly cropped and flipped
with ``augment``) and normalised with the ImageNet mean and standard deviation that
pretrained backbones expect; grayscale images are resized and scaled to [0, 1].

A batch is decoded by a pool of threads (Pillow releases the GIL while it decodes and
resizes). Measured on 75 JPEGs of 500 x 375 pixels (CUB's typical size) on a 2-core CPU:
0.25 s with one thread, 0.15 s with two; a GPU would otherwise wait for the decoding.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from ..checks import check_non_negative_int, check_positive_int
from .dataset import as_label_tensor, check_class_ids, subset_labels

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
MAX_DEFAULT_WORKERS = 8


class Augmentation(NamedTuple):
    """The random choices for one image, drawn before decoding so threads cannot reorder them.

    ``scale``: side of the square crop as a share of the shorter side; ``left``, ``top``:
    the crop's position in [0, 1) as a share of the room left (None: centred); ``flip``:
    mirror horizontally.
    """

    scale: float = 1.0
    left: float | None = None
    top: float | None = None
    flip: bool = False


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
        workers: threads that decode a batch (default: the CPU count, at most 8). The
            batch is the same for any number: the random choices are drawn first, in order.
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
        workers: int | None = None,
    ):
        self.paths = [Path(p) for p in paths]
        self.labels = as_label_tensor(labels)
        if len(self.paths) != len(self.labels):
            raise ValueError(
                f"paths and labels disagree on the number of samples: {len(self.paths)} and {len(self.labels)}"
            )
        self.class_names = list(class_names)
        check_class_ids(self.labels, self.class_names)
        self.image_size = check_positive_int("image_size", image_size)
        self.grayscale = grayscale
        self.invert = invert
        self.augment = augment
        self.name = name
        self.seed = check_non_negative_int("seed", seed)
        self.rng = np.random.default_rng(self.seed)
        if workers is None:
            workers = min(MAX_DEFAULT_WORKERS, os.cpu_count() or 1)
        self.workers = check_positive_int("workers", workers)

    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        return (
            f"ImageFileDataset(name={self.name!r}, samples={len(self)}, classes={self.num_classes}, "
            f"image_size={self.image_size})"
        )

    @property
    def num_classes(self) -> int:
        return int(torch.unique(self.labels).numel())

    def subset(
        self, indices: Sequence[int] | Tensor, relabel: bool = False, name: str | None = None
    ) -> ImageFileDataset:
        """The samples at ``indices`` with the same image settings (a fresh augmentation generator
        seeded like this one); with ``relabel`` the classes become ``0 .. C-1`` in sorted order."""
        index = torch.as_tensor(indices, dtype=torch.long)
        labels, names = subset_labels(self.labels[index], self.class_names, relabel)
        return ImageFileDataset(
            [self.paths[int(i)] for i in index],
            labels,
            names,
            image_size=self.image_size,
            grayscale=self.grayscale,
            invert=self.invert,
            augment=self.augment,
            name=name or self.name,
            seed=self.seed,
            workers=self.workers,
        )

    def get_batch(self, indices: Sequence[int] | Tensor) -> tuple[Tensor, Tensor]:
        index = [int(i) for i in torch.as_tensor(indices, dtype=torch.long)]
        paths = [self.paths[i] for i in index]
        augmentations = [self.draw_augmentation() for _ in index]
        if self.workers > 1 and len(index) > 1:
            with ThreadPoolExecutor(min(self.workers, len(index))) as pool:
                arrays = list(pool.map(self.load, paths, augmentations))
        else:
            arrays = [self.load(path, augmentation) for path, augmentation in zip(paths, augmentations)]
        return torch.from_numpy(np.stack(arrays)), self.labels[torch.as_tensor(index, dtype=torch.long)]

    def draw_augmentation(self) -> Augmentation:
        """The next image's random crop and flip (the centre crop without ``augment``)."""
        if not self.augment:
            return Augmentation()
        return Augmentation(
            scale=float(self.rng.uniform(0.8, 1.0)),
            left=float(self.rng.random()),
            top=float(self.rng.random()),
            flip=bool(self.rng.random() < 0.5),
        )

    def load(self, path: Path, augmentation: Augmentation | None = None) -> np.ndarray:
        """One image as a float32 array of shape (channels, size, size)."""
        from PIL import Image

        augmentation = augmentation if augmentation is not None else self.draw_augmentation()
        with Image.open(path) as image:
            image = image.convert("L" if self.grayscale else "RGB")
            image = _square_crop(image, augmentation)
            image = image.resize((self.image_size, self.image_size), Image.BILINEAR)
            if augmentation.flip:
                image = image.transpose(Image.FLIP_LEFT_RIGHT)
            array = np.asarray(image, dtype=np.float32) / 255.0
        if self.grayscale:
            return (1.0 - array if self.invert else array)[None]
        return ((array - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1).copy()


def _square_crop(image, augmentation: Augmentation):
    """A square of ``scale`` times the shorter side, placed by ``left`` and ``top``."""
    width, height = image.size
    side = max(1, int(min(width, height) * augmentation.scale))
    left = _offset(augmentation.left, width - side)
    top = _offset(augmentation.top, height - side)
    return image.crop((left, top, left + side, top + side))


def _offset(share: float | None, room: int) -> int:
    """``room // 2`` for None, otherwise one of ``0 .. room`` (each equally likely for uniform ``share``)."""
    return room // 2 if share is None else min(int(share * (room + 1)), room)
