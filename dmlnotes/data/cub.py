"""CUB-200-2011 (Wah et al. 2011): 11,788 photographs of 200 bird species.

The standard metric-learning protocol (Song et al. 2016; Zhai & Wu 2018): classes 1-100
train, classes 101-200 test, all images of a class on the same side. The data set is not
bundled: download it and extract it into ``data/`` (see :func:`load_cub`).
"""

from __future__ import annotations

from pathlib import Path

from ..checks import check_positive_int
from .images import ImageFileDataset
from .paths import DatasetNotFoundError, data_root

CUB_URL = "https://www.vision.caltech.edu/datasets/cub_200_2011/"
NUM_CLASSES = 200
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


def _lines(path: Path) -> list[str]:
    """The file's lines, decoded as UTF-8; a ValueError names the file and line that is not."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError as error:
        line_number = data[: error.start].count(b"\n") + 1
        raise ValueError(
            f"{path}:{line_number}: expected UTF-8 text, got the byte {data[error.start : error.start + 1]!r}"
        ) from None


def _read_table(path: Path) -> dict[int, tuple[int, str]]:
    """``<id> <value>`` lines as ``{id: (line number, value)}``."""
    table = {}
    for line_number, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or not parts[0].isdecimal() or not parts[0].isascii():
            raise ValueError(f"{path}:{line_number}: expected '<id> <value>', got {line!r}")
        row_id = int(parts[0])
        if row_id in table:
            raise ValueError(f"{path}:{line_number}: id {row_id} is already on line {table[row_id][0]}")
        table[row_id] = (line_number, parts[1].strip())
    return table


def _read_class_ids(path: Path) -> dict[int, int]:
    """``image_class_labels.txt``: ``{image id: class id}``, class ids 1 .. 200."""
    classes = {}
    for image_id, (line_number, value) in _read_table(path).items():
        if not (value.isdecimal() and value.isascii() and 1 <= int(value) <= NUM_CLASSES):
            raise ValueError(
                f"{path}:{line_number}: expected a class id from 1 to {NUM_CLASSES} after image id {image_id}, "
                f"got {value!r}"
            )
        classes[image_id] = int(value)
    return classes


def load_cub(
    root: str | Path | None = None,
    split: str = "train",
    image_size: int = 224,
    augment: bool | None = None,
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
    An index file that is not UTF-8, a malformed or repeated line, a class id outside
    1-200, or no image of the split's classes raises a ValueError naming the file (and line).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    image_size = check_positive_int("image_size", image_size)
    folder = cub_root(root)
    images = {image_id: path for image_id, (_, path) in _read_table(folder / "images.txt").items()}
    classes = _read_class_ids(folder / "image_class_labels.txt")
    missing = sorted(set(images) - set(classes))
    if missing:
        raise ValueError(f"{folder / 'image_class_labels.txt'} has no class for image ids {missing[:5]}")
    names_file = folder / "classes.txt"
    class_names = {c: name for c, (_, name) in _read_table(names_file).items()} if names_file.is_file() else {}
    keep = [i for i in sorted(images) if (classes[i] <= NUM_TRAIN_CLASSES) == (split == "train")]
    if not keep:
        wanted = f"1-{NUM_TRAIN_CLASSES}" if split == "train" else f"{NUM_TRAIN_CLASSES + 1}-{NUM_CLASSES}"
        raise ValueError(
            f"{folder / 'image_class_labels.txt'} gives no image of classes {wanted} (the {split} split) among the "
            f"{len(images)} images of {folder / 'images.txt'}: expected the full CUB-200-2011 (200 classes)"
        )
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
