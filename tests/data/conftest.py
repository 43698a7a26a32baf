"""Tiny data sets in the folder layouts the loaders read, generated in a temporary folder (never downloaded)."""

import numpy as np
import pytest
from PIL import Image


def write_cub(root, classes=(1, 2, 101, 102, 103), per_class=2):
    """A CUB_200_2011 folder: ``per_class`` flat-colour images of each class id."""
    folder = root / "CUB_200_2011"
    lines, labels, names = [], [], []
    image_id = 0
    for c in classes:
        name = f"{c:03d}.Bird_{c}"
        names.append(f"{c} {name}")
        (folder / "images" / name).mkdir(parents=True)
        for k in range(per_class):
            image_id += 1
            relative = f"{name}/Bird_{c}_{k}.jpg"
            # Stored losslessly (PNG bytes behind the .jpg name) so the colour test can be exact.
            Image.new("RGB", (40 + 10 * k, 30), color=(c % 256, 100, 50)).save(
                folder / "images" / relative, format="PNG"
            )
            lines.append(f"{image_id} {relative}")
            labels.append(f"{image_id} {c}")
    (folder / "images.txt").write_text("\n".join(lines) + "\n")
    (folder / "image_class_labels.txt").write_text("\n".join(labels) + "\n")
    (folder / "classes.txt").write_text("\n".join(names) + "\n")
    return folder


def write_omniglot(root):
    """``omniglot-py``: two background alphabets and one evaluation alphabet, 2 characters x 3 drawings each."""
    for split, alphabets in (("images_background", ["Latin", "Greek"]), ("images_evaluation", ["Tengwar"])):
        for alphabet in alphabets:
            for character in ("character01", "character02"):
                folder = root / "omniglot-py" / split / alphabet / character
                folder.mkdir(parents=True)
                for k in range(3):
                    image = np.full((105, 105), 255, dtype=np.uint8)
                    image[40:60, 40 + k : 60 + k] = 0  # a black stroke on white paper
                    Image.fromarray(image).save(folder / f"{k:02d}.png")
    return root


@pytest.fixture
def cub_folder(tmp_path):
    return write_cub(tmp_path)


@pytest.fixture
def omniglot_root(tmp_path):
    return write_omniglot(tmp_path)
