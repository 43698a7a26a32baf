"""Omniglot (Lake et al. 2015): 1,623 handwritten characters of 50 alphabets, 20 drawings each.

Read from torchvision's folder layout, ``omniglot-py/images_background`` (30 alphabets,
the train classes) and ``omniglot-py/images_evaluation`` (20 other alphabets, the test
classes), each ``<alphabet>/<character>/*.png``. Not bundled: see :func:`load_omniglot`.
"""

from __future__ import annotations

from pathlib import Path

from ..checks import check_positive_int
from .images import ImageFileDataset
from .paths import DatasetNotFoundError, data_root

OMNIGLOT_URL = "https://github.com/brendenlake/omniglot (python/images_background.zip, images_evaluation.zip)"
SPLIT_FOLDERS = {"train": "images_background", "test": "images_evaluation"}


def omniglot_split_folder(root: str | Path | None, split: str) -> Path:
    base = Path(root).expanduser() if root is not None else data_root() / "omniglot"
    for candidate in (base / "omniglot-py" / SPLIT_FOLDERS[split], base / SPLIT_FOLDERS[split]):
        if candidate.is_dir():
            return candidate
    raise DatasetNotFoundError(
        f"Omniglot ({split}) was not found: expected {(base / 'omniglot-py' / SPLIT_FOLDERS[split]).resolve()} "
        f"holding <alphabet>/<character>/*.png. Get {SPLIT_FOLDERS[split]}.zip from {OMNIGLOT_URL} and unzip "
        f"it into {(base / 'omniglot-py').resolve()} (torchvision.datasets.Omniglot(root='{base}', download=True) "
        "creates the same layout)."
    )


def load_omniglot(
    root: str | Path | None = None, split: str = "train", image_size: int = 28, workers: int | None = None
) -> ImageFileDataset:
    """Omniglot's background (``"train"``) or evaluation (``"test"``) alphabets.

    Images become ``image_size`` x ``image_size`` grayscale with white strokes on black,
    like the glyphs data set. Classes are characters, named ``alphabet/character``.
    ``workers``: threads that decode a batch (default: the CPU count, at most 8).
    """
    if split not in SPLIT_FOLDERS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    image_size = check_positive_int("image_size", image_size)
    folder = omniglot_split_folder(root, split)
    paths, labels, class_names = [], [], []
    for character in sorted(p for p in folder.glob("*/*") if p.is_dir()):
        drawings = sorted(character.glob("*.png"))
        if not drawings:
            continue
        paths += drawings
        labels += [len(class_names)] * len(drawings)
        class_names.append(f"{character.parent.name}/{character.name}")
    if not paths:
        raise DatasetNotFoundError(f"{folder} holds no <alphabet>/<character>/*.png files")
    return ImageFileDataset(
        paths,
        labels,
        class_names,
        image_size=image_size,
        grayscale=True,
        invert=True,
        name=f"Omniglot ({split})",
        workers=workers,
    )
