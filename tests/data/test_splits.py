"""Every split and sampler on every kind of data set the loaders return.

Digits are bundled; glyphs are rendered small (2 images per class) in a temporary folder;
Omniglot and CUB-200-2011 are tiny fake folders in their layouts (tests/data/conftest.py);
the last two kinds are an InMemoryDataset and an ImageFileDataset built directly.
"""

from collections import Counter

import pytest
import torch
from PIL import Image

from dmlnotes.data import (
    ClassBalancedBatchSampler,
    ImageFileDataset,
    InMemoryDataset,
    RandomBatchSampler,
    class_disjoint_split,
    load_cub,
    load_digits,
    load_glyphs,
    load_omniglot,
    stratified_split,
)

KINDS = ["digits", "glyphs", "omniglot", "cub", "in_memory", "image_folder"]


@pytest.fixture(scope="module")
def small_glyphs(tmp_path_factory):
    return load_glyphs(root=tmp_path_factory.mktemp("glyphs"), images_per_class=2)


def image_folder(folder, num_classes=3, per_class=4):
    folder.mkdir()
    paths, labels = [], []
    for c in range(num_classes):
        for k in range(per_class):
            paths.append(folder / f"class{c}_{k}.png")
            Image.new("L", (20, 16), color=40 * c + k).save(paths[-1])
            labels.append(c)
    return ImageFileDataset(
        paths,
        labels,
        [f"shade {c}" for c in range(num_classes)],
        image_size=8,
        grayscale=True,
        name="shades",
        workers=1,
    )


@pytest.fixture(params=KINDS)
def dataset(request, tmp_path, small_glyphs):
    if request.param == "digits":
        return load_digits()
    if request.param == "glyphs":
        return small_glyphs
    if request.param == "omniglot":  # 4 characters, 3 drawings each
        return load_omniglot(request.getfixturevalue("omniglot_root"), "train", workers=1)
    if request.param == "cub":  # the test half: classes 101-103, 2 images each
        return load_cub(request.getfixturevalue("cub_folder"), "test", image_size=8, workers=1)
    if request.param == "in_memory":
        labels = torch.tensor([2, 0, 1, 2, 0, 1, 3, 3, 2, 0, 1, 3])
        return InMemoryDataset(torch.randn(len(labels), 3), labels, ["w", "x", "y", "z"], name="toy")
    return image_folder(tmp_path / "shades")


def sample_keys(dataset):
    """What identifies a sample: its file, or its input values, with its class name."""
    if hasattr(dataset, "paths"):
        items = [str(p) for p in dataset.paths]
    else:
        items = [row.numpy().tobytes() for row in dataset.inputs]
    return Counter(zip(items, (dataset.class_names[int(c)] for c in dataset.labels)))


def check_side(side, dataset):
    assert type(side) is type(dataset)
    assert len(side) > 0 and side.num_classes > 0
    # the side's batches come out of it as out of the full set, labels travelling with inputs
    indices = [0, len(side) - 1]
    inputs, labels = side.get_batch(indices)
    assert inputs.shape[0] == 2 and inputs.shape[1:] == dataset.get_batch([0])[0].shape[1:]
    assert labels.tolist() == side.labels[indices].tolist()


def test_class_disjoint_split(dataset):
    train, test = class_disjoint_split(dataset)
    for side in (train, test):
        check_side(side, dataset)
        assert sorted(torch.unique(side.labels).tolist()) == list(range(side.num_classes))  # relabelled
    assert not set(train.class_names) & set(test.class_names)
    assert sample_keys(train) + sample_keys(test) == sample_keys(dataset)


def test_stratified_split(dataset):
    train, test = stratified_split(dataset, test_fraction=0.5, seed=1)
    for side in (train, test):
        check_side(side, dataset)
        names = {side.class_names[int(c)] for c in torch.unique(side.labels)}
        assert names == set(dataset.class_names[int(c)] for c in torch.unique(dataset.labels))
    assert sample_keys(train) + sample_keys(test) == sample_keys(dataset)


def test_samplers_draw_batches_the_set_can_load(dataset):
    train, _ = class_disjoint_split(dataset)
    classes = min(2, train.num_classes)
    for batch in ClassBalancedBatchSampler(train.labels, classes, 2, num_batches=2, seed=0):
        inputs, labels = train.get_batch(batch)
        assert inputs.shape[0] == len(batch) == 2 * classes
        assert torch.unique(labels).numel() == classes
    batch_size = min(4, len(train))
    for batch in RandomBatchSampler(len(train), batch_size, num_batches=3, seed=0):
        assert len(set(batch)) == batch_size and set(batch) <= set(range(len(train)))
        assert train.get_batch(batch)[0].shape[0] == batch_size
