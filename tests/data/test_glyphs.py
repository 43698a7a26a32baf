"""Tests of the glyphs data set (dmlnotes/data/glyphs.py).

Most tests share one small generation (4 images per class) in a temporary folder, so
the file runs in seconds; the class list is computed once per process.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.ft2font import FT2Font

from dmlnotes.data import glyphs
from dmlnotes.data.dataset import InMemoryDataset
from dmlnotes.data.glyphs import glyph_classes, glyph_similarity, load_glyphs, render_glyphs, sample_augmentations
from dmlnotes.data.paths import DATA_ENV_VAR, data_root
from dmlnotes.data.splits import class_disjoint_split

IMAGES_PER_CLASS = 4

# Look-alike groups named in the design brief, written out here rather than taken from the module.
BRIEF_LOOKALIKE_GROUPS = [
    "A\u0391\u0410",  # Latin A, Greek Alpha, Cyrillic A
    "O0\u039f\u041e",  # O, zero, Greek Omicron, Cyrillic O
    "o\u03bf\u043e",  # the small ones
    "lI|1",
    "cC",
    "oO",
    "sS",
    "vV",
    "wW",
    "xX",
    "zZ",  # case pairs that differ only in size
]


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("glyphs-cache")


@pytest.fixture(scope="module")
def dataset(cache_root) -> InMemoryDataset:
    return load_glyphs(root=cache_root, images_per_class=IMAGES_PER_CLASS)


def images_of(dataset: InMemoryDataset) -> np.ndarray:
    """Inputs as an array (classes, images per class, height, width)."""
    inputs = dataset.inputs.numpy()
    return inputs.reshape(dataset.num_classes, -1, *inputs.shape[2:])


def script_of(char: str) -> str:
    """Coarse script of a character, from its Unicode name and category (independent of the module)."""
    name = unicodedata.name(char)
    for script in ("LATIN", "GREEK", "CYRILLIC"):
        if name.startswith(script) and unicodedata.category(char).startswith("L"):
            return script
    return "DIGIT" if unicodedata.category(char) == "Nd" else "OTHER"


def test_shapes_dtype_labels_and_names(dataset):
    num_classes = len(dataset.class_names)
    assert 200 <= num_classes <= 320
    assert dataset.name == "glyphs"
    assert dataset.inputs.shape == (num_classes * IMAGES_PER_CLASS, 1, 28, 28)
    assert dataset.inputs.dtype == torch.float32
    assert dataset.labels.dtype == torch.long
    assert torch.equal(dataset.labels, torch.arange(num_classes).repeat_interleave(IMAGES_PER_CLASS))
    assert torch.bincount(dataset.labels).tolist() == [IMAGES_PER_CLASS] * num_classes
    assert len(set(dataset.class_names)) == num_classes
    assert all(len(name) == 1 and not name.isspace() for name in dataset.class_names)
    assert dataset.class_names == [glyph.char for glyph in glyph_classes()]


def test_values_are_white_strokes_on_black_inside_the_frame(dataset):
    images = dataset.inputs.numpy()[:, 0]
    assert images.min() == 0.0 and images.max() == 1.0
    border = np.concatenate([images[:, 0, :], images[:, -1, :], images[:, :, 0], images[:, :, -1]], axis=1)
    assert border.max() == 0.0, "a glyph touches the border: it may be clipped"
    # most of the frame is background
    assert np.median(images) == 0.0


def test_every_image_has_visible_ink(dataset):
    images = dataset.inputs.numpy().reshape(len(dataset), -1)
    assert images.max(axis=1).min() >= 0.5
    assert (images > 0.5).sum(axis=1).min() >= 10


def test_glyphs_are_centred_up_to_the_random_shift(dataset):
    # The shift moves the centre of the glyph's rotated box by at most MAX_SHIFT * 28 = 2.8 pixels;
    # the ink's box can sit up to about 2 pixels further off for lopsided glyphs turned by 15 degrees.
    assert glyphs.MAX_SHIFT == 0.1
    images = dataset.inputs.numpy()[:, 0] > 0.1
    rows_with_ink, cols_with_ink = images.any(axis=2), images.any(axis=1)
    top, bottom = rows_with_ink.argmax(axis=1), 27 - rows_with_ink[:, ::-1].argmax(axis=1)
    left, right = cols_with_ink.argmax(axis=1), 27 - cols_with_ink[:, ::-1].argmax(axis=1)
    centre_y, centre_x = (top + bottom) / 2, (left + right) / 2
    assert np.abs(centre_y - 13.5).max() <= 5 and np.abs(centre_x - 13.5).max() <= 5
    assert abs(centre_y.mean() - 13.5) < 0.5 and abs(centre_x.mean() - 13.5) < 0.5


def test_images_of_one_class_differ(dataset):
    images = images_of(dataset).reshape(dataset.num_classes, IMAGES_PER_CLASS, -1)
    for a in range(IMAGES_PER_CLASS):
        for b in range(a + 1, IMAGES_PER_CLASS):
            differences = np.abs(images[:, a] - images[:, b]).max(axis=1)
            assert differences.min() > 0.1


def test_same_arguments_give_identical_arrays_and_seeds_differ():
    first = render_glyphs(2, seed=3)
    second = render_glyphs(2, seed=3)
    assert first.dtype == np.uint8
    assert np.array_equal(first, second)
    other_seed = render_glyphs(2, seed=4)
    assert not np.array_equal(first, other_seed)


def test_a_fresh_folder_gives_the_same_data(dataset, tmp_path):
    again = load_glyphs(root=tmp_path, images_per_class=IMAGES_PER_CLASS)
    assert torch.equal(again.inputs, dataset.inputs)
    assert torch.equal(again.labels, dataset.labels)
    assert again.class_names == dataset.class_names


def test_second_load_reads_the_cache(dataset, cache_root, monkeypatch):
    path = glyphs.cache_path(cache_root, IMAGES_PER_CLASS, 28, 0)
    assert path.is_file()
    modified = path.stat().st_mtime_ns

    def must_not_render(*args, **kwargs):
        raise AssertionError("the cache was ignored")

    monkeypatch.setattr(glyphs, "render_glyphs", must_not_render)
    cached = load_glyphs(root=cache_root, images_per_class=IMAGES_PER_CLASS)
    assert torch.equal(cached.inputs, dataset.inputs)
    assert cached.class_names == dataset.class_names
    assert path.stat().st_mtime_ns == modified


def test_regenerate_renders_again(tmp_path, monkeypatch):
    load_glyphs(root=tmp_path, images_per_class=1)
    calls = []
    original = glyphs.render_glyphs

    def counting(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(glyphs, "render_glyphs", counting)
    load_glyphs(root=tmp_path, images_per_class=1)
    assert calls == []
    load_glyphs(root=tmp_path, images_per_class=1, regenerate=True)
    assert len(calls) == 1


def test_cache_file_name_carries_version_and_arguments(tmp_path):
    path = glyphs.cache_path(tmp_path, 24, 28, 0)
    assert path.parent == tmp_path
    assert path.name.startswith(f"glyphs-v{glyphs.VERSION}-") and path.suffix == ".npz"
    variants = [(24, 28, 0), (24, 28, 1), (12, 28, 0), (24, 32, 0)]
    assert len({glyphs.cache_path(tmp_path, *arguments).name for arguments in variants}) == len(variants)


def test_broken_cache_file_is_rendered_again(tmp_path):
    path = glyphs.cache_path(tmp_path, 1, 28, 0)
    path.write_bytes(b"not a zip file")
    data = load_glyphs(root=tmp_path, images_per_class=1)
    assert data.inputs.shape[0] == len(data.class_names)
    with np.load(path) as stored:  # the broken file was replaced by a good one
        assert stored["images"].shape == (len(data.class_names), 1, 28, 28)


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    def fail_midway(file, **arrays):
        file.write(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(glyphs.np, "savez_compressed", fail_midway)
    with pytest.raises(KeyboardInterrupt):
        load_glyphs(root=tmp_path / "data", images_per_class=1)
    assert list((tmp_path / "data").iterdir()) == []


def test_every_class_is_drawn_in_at_least_three_fonts_whose_charmap_holds_it():
    filenames = {font.name: font.filename for font in glyphs.FONTS}
    font_folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    charmaps = {name: set(FT2Font(str(font_folder / filename)).get_charmap()) for name, filename in filenames.items()}
    for glyph in glyph_classes():
        assert len(glyph.fonts) >= 3, glyph
        for font_name in glyph.fonts:
            assert ord(glyph.char) in charmaps[font_name], (glyph.char, font_name)
    fonts_used = sample_augmentations(IMAGES_PER_CLASS, seed=0).font
    assert min(len(set(row)) for row in fonts_used) >= 3


def test_augmentations_stay_in_their_ranges_and_fonts_take_turns():
    augmentations = sample_augmentations(20, seed=1)
    classes = glyph_classes()
    assert augmentations.font.shape == (len(classes), 20)
    assert np.abs(augmentations.angle).max() <= 15.0 and np.abs(augmentations.angle).max() > 10.0
    assert set(np.unique(augmentations.stroke)) == {0, 1, 2}
    assert augmentations.size.min() >= glyphs.SIZE_RANGE[0] and augmentations.size.max() <= glyphs.SIZE_RANGE[1]
    assert np.abs(augmentations.shift).max() <= 1.0
    for glyph, row in zip(classes, augmentations.font):
        counts = [list(row).count(font) for font in glyph.fonts]
        assert max(counts) - min(counts) <= 1, glyph.char


def test_known_lookalike_groups_keep_at_most_one_member():
    names = {glyph.char for glyph in glyph_classes()}
    for group in BRIEF_LOOKALIKE_GROUPS + list(glyphs.LOOKALIKE_GROUPS):
        kept = [c for c in set(group) if c in names]
        assert len(kept) <= 1, f"look-alikes kept together: {kept}"


def test_no_two_classes_are_near_identical():
    names = [glyph.char for glyph in glyph_classes()]
    similarity = glyph_similarity(names)
    np.fill_diagonal(similarity, -1.0)
    worst = np.unravel_index(similarity.argmax(), similarity.shape)
    assert similarity.max() <= glyphs.LOOKALIKE_THRESHOLD, (names[worst[0]], names[worst[1]], similarity.max())


def test_similarity_is_the_mean_correlation_over_shared_fonts():
    pairs = [("A", "\u039b"), ("E", "\u0415"), ("A", "\u25cf"), ("g", "\u2192")]
    for a, b in pairs:
        shared = [font for font in glyphs.covering_fonts(a) if font in glyphs.covering_fonts(b)]
        correlations = [
            np.corrcoef(glyphs.canonical_glyph(a, font).ravel(), glyphs.canonical_glyph(b, font).ravel())[0, 1]
            for font in shared
        ]
        matrix = glyph_similarity([a, b])
        assert matrix[0, 1] == pytest.approx(np.mean(correlations), abs=1e-9)
        assert matrix[0, 1] == pytest.approx(matrix[1, 0])
        assert matrix[0, 0] == pytest.approx(1.0)
    # the measure flags a true homoglyph (Latin E, Cyrillic Ie) and not a different shape
    assert glyph_similarity(["E", "\u0415"])[0, 1] > glyphs.LOOKALIKE_THRESHOLD
    assert glyph_similarity(["A", "\u25cf"])[0, 1] < 0.5


def test_class_disjoint_split_mixes_scripts(dataset):
    train_set, test_set = class_disjoint_split(dataset)
    scripts = [script_of(c) for c in dataset.class_names]
    for script in ("LATIN", "GREEK", "CYRILLIC", "DIGIT", "OTHER"):
        total = scripts.count(script)
        in_train = sum(script_of(c) == script for c in train_set.class_names)
        assert in_train > 0 and total - in_train > 0, script
        if total >= 20:
            assert 0.35 <= in_train / total <= 0.65, (script, in_train, total)


def test_other_image_sizes(tmp_path):
    data = load_glyphs(root=tmp_path, images_per_class=1, image_size=16)
    assert data.inputs.shape == (len(data.class_names), 1, 16, 16)
    images = data.inputs.numpy()[:, 0]
    assert images[:, 0, :].max() == 0.0 and images[:, :, -1].max() == 0.0
    assert images.reshape(len(images), -1).max(axis=1).min() >= 0.3  # thin strokes turn grey at 16 pixels


@pytest.mark.parametrize(
    "arguments",
    [{"images_per_class": 0}, {"images_per_class": 2.5}, {"images_per_class": True}, {"image_size": 4}, {"seed": -1}],
)
def test_bad_arguments_raise_value_error_before_rendering(arguments, tmp_path):
    with pytest.raises(ValueError, match=next(iter(arguments))):
        load_glyphs(root=tmp_path, **arguments)
    assert list(tmp_path.iterdir()) == []


def test_default_root_is_the_collection_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_ENV_VAR, str(tmp_path / "elsewhere"))
    assert glyphs.cache_path(None, 1, 28, 0).parent == data_root() == tmp_path / "elsewhere"


def test_glyphs_split_is_the_class_disjoint_split_of_the_cached_glyphs(dataset, cache_root, monkeypatch):
    from dmlnotes.data import glyphs_split
    from dmlnotes.experiments import comparison

    assert comparison.glyphs_split is glyphs_split  # moved to dmlnotes.data; the old import still works
    monkeypatch.setenv(DATA_ENV_VAR, str(cache_root))  # where the module's fixture cached the images
    glyphs_split.cache_clear()
    try:
        train_set, test_set = glyphs_split(IMAGES_PER_CLASS)
        assert glyphs_split(IMAGES_PER_CLASS)[0] is train_set  # kept in memory
    finally:
        glyphs_split.cache_clear()
    expected_train, expected_test = class_disjoint_split(dataset)
    for ours, expected in ((train_set, expected_train), (test_set, expected_test)):
        assert torch.equal(ours.inputs, expected.inputs) and torch.equal(ours.labels, expected.labels)
        assert ours.class_names == expected.class_names and ours.name == expected.name
