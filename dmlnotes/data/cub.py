"""CUB-200-2011 (Wah et al. 2011): 11,788 photographs of 200 bird species.

The standard metric-learning protocol (Song et al. 2016; Zhai & Wu 2018): classes 1-100
train, classes 101-200 test, all images of a class on the same side. The data set is not
bundled: download it and extract it into ``data/`` (see :func:`load_cub`).
"""

from __future__ import annotations

from pathlib import Path

from .images import ImageFileDataset
from .paths import DatasetNotFoundError, data_root

CUB_URL = "https://www.vision.caltech.edu/datasets/cub_200_2011/"
NUM_TRAIN_CLASSES = 100


def cub_root(root: str | Path | None = None) -> Path:
    """The folder holding ``images.txt``: ``root`` itself or ``root/CUB_200_2011``."""
    base = Path(root).expanduser() if root is not None else data_root() / "CUB_200_2011"
    for candidate in (base, base / "CUB_200_2011"):
        if (candidate / "images.txt").is_file() and (candidate / "image_class_labels.txt").is_file():
            return candidate
    raise DatasetNotFoundError(
        f"CUB-200-2011 was not found at {base.resolve()}: expected {base.resolve() / 'images.txt'}, "
        f"image_class_labels.txt and images/. Download CUB_200_2011.tgz from {CUB_URL} and extract it "
        f"into {base.resolve().parent} (it unpacks to a CUB_200_2011 folder)."
    )


def _read_table(path: Path) -> dict[int, str]:
    table = {}
    for line_number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or not parts[0].isdigit():
            raise ValueError(f"{path}:{line_number}: expected '<id> <value>', got {line!r}")
        table[int(parts[0])] = parts[1].strip()
    return table


def load_cub(
    root: str | Path | None = None, split: str = "train", image_size: int = 224, augment: bool | None = None,
    workers: int | None = None,
) -> ImageFileDataset:
    """The train (classes 1-100) or test (classes 101-200) half of CUB-200-2011.

    Args:
        root: the ``CUB_200_2011`` folder (default ``data/CUB_200_2011``).
        split: ``"train"`` or ``"test"``.
        image_size: side of the square crops (224 for ImageNet backbones).
        augment: random crops and flips; default on for the train split.
        workers: threads that decode a batch (default: the CPU count, at most 8).

    Labels are renumbered ``0 .. 99`` on each side; ``class_names`` keeps the species.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = cub_root(root)
    images = _read_table(folder / "images.txt")
    classes = {image_id: int(label) for image_id, label in _read_table(folder / "image_class_labels.txt").items()}
    missing = sorted(set(images) - set(classes))
    if missing:
        raise ValueError(f"{folder / 'image_class_labels.txt'} has no class for image ids {missing[:5]}")
    names_file = folder / "classes.txt"
    class_names = _read_table(names_file) if names_file.is_file() else {}
    keep = [i for i in sorted(images) if (classes[i] <= NUM_TRAIN_CLASSES) == (split == "train")]
    kept_classes = sorted({classes[i] for i in keep})
    renumber = {c: index for index, c in enumerate(kept_classes)}
    return ImageFileDataset(
        paths=[folder / "images" / images[i] for i in keep],
        labels=[renumber[classes[i]] for i in keep],
        class_names=[class_names.get(c, str(c)) for c in kept_classes],
        image_size=image_size,
        augment=(split == "train") if augment is None else augment,
        name=f"CUB-200-2011 ({split})",
        workers=workers,
    )
