"""CUB-200-2011 and Omniglot loaders on small folders made in their standard layouts."""

import numpy as np
import pytest
import torch
from PIL import Image

from dmlnotes.data import DatasetNotFoundError, load_cub, load_omniglot
from dmlnotes.data.images import IMAGENET_MEAN, IMAGENET_STD


def make_cub(root, classes=(1, 2, 101, 102, 103), per_class=2):
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
            Image.new("RGB", (40 + 10 * k, 30), color=(c % 256, 100, 50)).save(folder / "images" / relative, format="PNG")
            lines.append(f"{image_id} {relative}")
            labels.append(f"{image_id} {c}")
    (folder / "images.txt").write_text("\n".join(lines) + "\n")
    (folder / "image_class_labels.txt").write_text("\n".join(labels) + "\n")
    (folder / "classes.txt").write_text("\n".join(names) + "\n")
    return folder


def test_cub_splits_classes_1_to_100_from_101_to_200(tmp_path):
    folder = make_cub(tmp_path)
    train = load_cub(folder, split="train", image_size=16)
    test = load_cub(tmp_path, split="test", image_size=16)  # the parent folder works too
    assert len(train) == 4 and len(test) == 6
    assert train.labels.tolist() == [0, 0, 1, 1] and test.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert train.class_names == ["001.Bird_1", "002.Bird_2"]
    assert test.class_names[0] == "101.Bird_101"
    assert train.augment and not test.augment


def test_cub_images_are_normalised_rgb_crops(tmp_path):
    test = load_cub(make_cub(tmp_path), split="test", image_size=16)
    images, labels = test.get_batch([0, 5])
    assert images.shape == (2, 3, 16, 16) and images.dtype == torch.float32
    assert labels.tolist() == [0, 2]
    # A flat-colour image: every pixel equals (colour / 255 - mean) / std.
    expected = (np.array([101, 100, 50]) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    assert torch.allclose(images[0].mean(dim=(1, 2)), torch.tensor(expected, dtype=torch.float32), atol=1e-5)


def test_missing_cub_names_the_expected_path_and_the_download(tmp_path):
    with pytest.raises(DatasetNotFoundError) as error:
        load_cub(tmp_path / "nowhere")
    message = str(error.value)
    assert str((tmp_path / "nowhere" / "images.txt").resolve()) in message
    assert "vision.caltech.edu" in message
    assert isinstance(error.value, FileNotFoundError)


def test_cub_rejects_a_bad_split(tmp_path):
    with pytest.raises(ValueError, match="split must be"):
        load_cub(make_cub(tmp_path), split="val")


def make_omniglot(root):
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


def test_omniglot_background_trains_and_evaluation_tests(tmp_path):
    root = make_omniglot(tmp_path)
    train, test = load_omniglot(root, "train"), load_omniglot(root, "test")
    assert len(train) == 12 and train.num_classes == 4 and len(test) == 6 and test.num_classes == 2
    assert train.class_names[0] == "Greek/character01"
    images, _ = train.get_batch([0])
    assert images.shape == (1, 1, 28, 28)
    # Inverted: strokes white (near 1) on black (0), like the glyphs.
    assert float(images.max()) > 0.9 and float(images[0, 0, 0, 0]) == 0.0


def test_missing_omniglot_says_where_to_put_it(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="images_background"):
        load_omniglot(tmp_path / "empty", "train")
