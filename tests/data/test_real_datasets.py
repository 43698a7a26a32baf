"""CUB-200-2011 and Omniglot loaders on small folders made in their standard layouts."""

import numpy as np
import pytest
import torch

from dmlnotes.data import DatasetNotFoundError, load_cub, load_omniglot
from dmlnotes.data.images import IMAGENET_MEAN, IMAGENET_STD


def test_cub_splits_classes_1_to_100_from_101_to_200(cub_folder):
    train = load_cub(cub_folder, split="train", image_size=16)
    test = load_cub(cub_folder.parent, split="test", image_size=16)  # the parent folder works too
    assert len(train) == 4 and len(test) == 6
    assert train.labels.tolist() == [0, 0, 1, 1] and test.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert train.class_names == ["001.Bird_1", "002.Bird_2"]
    assert test.class_names[0] == "101.Bird_101"
    assert train.augment and not test.augment


def test_cub_images_are_normalised_rgb_crops(cub_folder):
    test = load_cub(cub_folder, split="test", image_size=16)
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


def test_cub_rejects_a_bad_split(cub_folder):
    with pytest.raises(ValueError, match="split must be"):
        load_cub(cub_folder, split="val")


def test_omniglot_background_trains_and_evaluation_tests(omniglot_root):
    train, test = load_omniglot(omniglot_root, "train"), load_omniglot(omniglot_root, "test")
    assert len(train) == 12 and train.num_classes == 4 and len(test) == 6 and test.num_classes == 2
    assert train.class_names[0] == "Greek/character01"
    images, _ = train.get_batch([0])
    assert images.shape == (1, 1, 28, 28)
    # Inverted: strokes white (near 1) on black (0), like the glyphs.
    assert float(images.max()) > 0.9 and float(images[0, 0, 0, 0]) == 0.0


def test_missing_omniglot_says_where_to_put_it(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="images_background"):
        load_omniglot(tmp_path / "empty", "train")


def replace_line(path, line_number, text):
    lines = path.read_text().splitlines()
    lines[line_number - 1] = text
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("bad_class", ["abc", "1.5", "0", "201", "-3", "\u00b2"])  # CUB has classes 1-200
def test_cub_class_id_that_is_not_one_of_the_200_names_file_and_line(cub_folder, bad_class):
    labels_file = cub_folder / "image_class_labels.txt"
    replace_line(labels_file, 3, f"3 {bad_class}")
    for split in ("train", "test"):
        with pytest.raises(ValueError, match=r"image_class_labels\.txt:3: expected a class id from 1 to 200") as error:
            load_cub(cub_folder, split=split)
        assert str(labels_file) in str(error.value) and repr(bad_class) in str(error.value)


def test_cub_malformed_and_repeated_ids_name_file_and_line(cub_folder):
    replace_line(cub_folder / "images.txt", 2, "x2 002.Bird_2/Bird_2_0.jpg")
    with pytest.raises(ValueError, match=r"images\.txt:2: expected '<id> <value>'"):
        load_cub(cub_folder)
    replace_line(cub_folder / "images.txt", 2, "1 002.Bird_2/Bird_2_0.jpg")
    with pytest.raises(ValueError, match=r"images\.txt:2: id 1 is already on line 1"):
        load_cub(cub_folder)


@pytest.mark.parametrize("index_file", ["images.txt", "image_class_labels.txt", "classes.txt"])
def test_cub_index_file_that_is_not_utf8_names_file_and_line(cub_folder, index_file):
    path = cub_folder / index_file
    lines = path.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].rstrip(b"\n") + b"\xe9\n"  # Latin-1 e-acute
    path.write_bytes(b"".join(lines))
    with pytest.raises(ValueError, match=rf"{index_file}:3: expected UTF-8 text") as error:
        load_cub(cub_folder)
    assert str(path) in str(error.value)


@pytest.mark.parametrize("image_size", [0, -8, 2.5, True])
def test_cub_and_omniglot_reject_a_bad_image_size_before_decoding(cub_folder, omniglot_root, image_size):
    with pytest.raises(ValueError, match=r"image_size must be an integer >= 1"):
        load_cub(cub_folder, image_size=image_size)
    with pytest.raises(ValueError, match=r"image_size must be an integer >= 1"):
        load_omniglot(omniglot_root, image_size=image_size)


def test_cub_image_size_accepts_numpy_integers(cub_folder):
    images, _ = load_cub(cub_folder, split="test", image_size=np.int64(8)).get_batch([0])
    assert images.shape == (1, 3, 8, 8)


def test_cub_folder_without_test_classes_says_so_instead_of_an_empty_set(cub_folder):
    for index_file in ("images.txt", "image_class_labels.txt"):  # keep images 1-4: classes 1 and 2
        path = cub_folder / index_file
        path.write_text("\n".join(path.read_text().splitlines()[:4]) + "\n")
    assert len(load_cub(cub_folder, split="train")) == 4
    with pytest.raises(
        ValueError, match=r"image_class_labels\.txt gives no image of classes 101-200 \(the test split\)"
    ):
        load_cub(cub_folder, split="test")
