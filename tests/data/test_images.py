"""ImageFileDataset: crops, augmentation and threaded decoding on generated image files."""

import numpy as np
import pytest
import torch
from PIL import Image

from dmlnotes.data.images import IMAGENET_MEAN, IMAGENET_STD, Augmentation, ImageFileDataset, _offset


def noise_images(folder, count=6, size=(37, 29)):
    rng = np.random.default_rng(0)
    paths = []
    for k in range(count):
        path = folder / f"{k}.png"
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def dataset(paths, **kwargs):
    return ImageFileDataset(paths, [k % 3 for k in range(len(paths))], ["a", "b", "c"], image_size=12, **kwargs)


def test_threads_give_the_same_augmented_batches_as_one_thread(tmp_path):
    paths = noise_images(tmp_path)
    one, four = dataset(paths, augment=True, seed=5, workers=1), dataset(paths, augment=True, seed=5, workers=4)
    for batch in ([0, 1, 2, 3, 4, 5], [5, 5, 0], [2]):
        (x1, y1), (x4, y4) = one.get_batch(batch), four.get_batch(batch)
        assert torch.equal(x1, x4) and torch.equal(y1, y4)
    # The draws are random: a second epoch of the same images gets other crops.
    assert not torch.equal(one.get_batch([0, 1])[0], one.get_batch([0, 1])[0])


def test_without_augmentation_the_crop_is_the_centred_square(tmp_path):
    (path,) = noise_images(tmp_path, count=1, size=(41, 30))
    images, _ = dataset([path], workers=2).get_batch([0])
    with Image.open(path) as image:  # side 30, room 11 -> left 5
        expected = np.asarray(image.crop((5, 0, 35, 30)).resize((12, 12), Image.BILINEAR), dtype=np.float32)
    ours = dataset([path]).load(path, Augmentation())
    assert np.array_equal(images[0].numpy(), ours)
    assert np.allclose(ours, ((expected / 255.0 - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1))


def test_random_offsets_cover_every_position_and_stay_inside():
    assert _offset(None, 11) == 5 and _offset(0.0, 11) == 0 and _offset(0.999999, 11) == 11
    offsets = [_offset(share, 4) for share in np.random.default_rng(0).random(500)]
    assert sorted(set(offsets)) == [0, 1, 2, 3, 4]
    assert _offset(0.7, 0) == 0


def test_bad_worker_counts_and_image_sizes_are_rejected(tmp_path):
    paths = noise_images(tmp_path, count=1)
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match="workers must be an integer >= 1"):
            dataset(paths, workers=bad)
        with pytest.raises(ValueError, match="image_size must be an integer >= 1"):
            ImageFileDataset(paths, [0], ["a"], image_size=bad)
    assert dataset(paths, workers=np.int64(2)).workers == 2  # numpy integers are integers
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        dataset(paths, seed=-1)


def test_labels_must_be_class_ids_with_a_name(tmp_path):
    paths = noise_images(tmp_path, count=3)
    with pytest.raises(ValueError, match=r"labels must be class ids >= 0, got -1 \(at sample 2\)"):
        ImageFileDataset(paths, [0, 1, -1], ["a", "b"])
    with pytest.raises(ValueError, match=r"labels must be class ids 0 \.\. 1, one per class name \(2 given\), got 2"):
        ImageFileDataset(paths, [0, 1, 2], ["a", "b"])


def test_subset_keeps_the_image_settings_and_relabels(tmp_path):
    paths = noise_images(tmp_path)
    data = ImageFileDataset(
        paths,
        [0, 1, 2, 0, 1, 2],
        ["a", "b", "c"],
        image_size=12,
        grayscale=True,
        invert=True,
        augment=True,
        name="noise",
        seed=5,
        workers=2,
    )
    sub = data.subset([4, 2, 5], relabel=True, name="part")
    assert sub.paths == [paths[4], paths[2], paths[5]]
    assert sub.labels.tolist() == [0, 1, 1] and sub.class_names == ["b", "c"] and sub.name == "part"
    assert (sub.image_size, sub.grayscale, sub.invert, sub.augment, sub.workers) == (12, True, True, True, 2)
    kept = data.subset([0, 4])
    assert kept.labels.tolist() == [0, 1] and kept.class_names == ["a", "b", "c"] and kept.name == "noise"
    # The same seed: the subset's first batch draws the crops the full set draws for its first batch.
    assert torch.equal(kept.get_batch([0, 1])[0], data.get_batch([0, 4])[0])
