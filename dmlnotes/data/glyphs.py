"""Glyphs: a many-class image data set rendered from the fonts that matplotlib ships.

Each class is one character (a Latin, Greek or Cyrillic letter, a digit, a punctuation
mark, a math operator, an arrow, a symbol); each image draws it in one of the fonts
whose character map holds it (DejaVu Sans, Serif and Sans Mono, STIX General, with
their bold and slanted styles), with a random rotation, size, shift and stroke width,
as a 28 x 28 grayscale image, white strokes on black. It plays the part of
CUB-200-2011 in the open-set lessons: hundreds of classes, so the test classes of a
class-disjoint split are many and never seen in training, and it needs no download.

The class list is fixed by this module, not by the arguments: candidate characters
(:data:`CANDIDATES`, in order of preference) are kept when at least :data:`MIN_FONTS`
fonts of :data:`MIN_FAMILIES` families draw them, and then look-alikes are removed
twice over:

1. :data:`LOOKALIKE_GROUPS` lists groups known to look the same once size is random
   (Latin A, Greek Alpha and Cyrillic A; O, o, 0; the vertical bars; ...): only the
   first available member of each group stays.
2. :func:`glyph_similarity` renders every candidate in each of its fonts at a canonical
   pose, crops it to its ink and fits it in a fixed box (aspect kept), and compares
   two characters by the mean correlation of their images over the fonts they share;
   going through the candidates in order, one that correlates above
   :data:`LOOKALIKE_THRESHOLD` with a character already kept is dropped.

With matplotlib 3.11's fonts that leaves 295 classes: 61 Latin letters, 32 Greek, 29
Cyrillic, 9 digits, 37 punctuation marks and 127 symbols (math, arrows, shapes, ...).
The default 24 images per class (7,080 images) render in about 3-4 s on a 2-core CPU
and are cached under ``data/`` (1.4 MB; see :func:`load_glyphs`), from where they load
in a fraction of a second. The same arguments give bit-identical arrays on the same
machine (another FreeType version may differ in the last grey level).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
import unicodedata
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from ..checks import check_integer, check_non_negative_int, check_positive_int
from .dataset import InMemoryDataset
from .paths import data_root
from .splits import class_disjoint_split

__all__ = [
    "CANDIDATES",
    "FONTS",
    "LOOKALIKE_GROUPS",
    "LOOKALIKE_THRESHOLD",
    "VERSION",
    "GlyphAugmentations",
    "GlyphClass",
    "GlyphFont",
    "available_fonts",
    "cache_path",
    "canonical_glyph",
    "covering_fonts",
    "font_path",
    "glyph_classes",
    "glyph_script",
    "glyph_similarity",
    "glyphs_split",
    "load_glyphs",
    "render_glyphs",
    "sample_augmentations",
]

VERSION = 1
"""Bump when the rendering or the class list changes: it is part of the cache file name."""

MIN_FONTS = 3
MIN_FAMILIES = 3
LOOKALIKE_THRESHOLD = 0.9
"""Mean correlation (over shared fonts, canonical pose) above which two characters count as look-alikes."""

CLASS_ORDER_SEED = 2019
"""Seeds the fixed class order; independent of ``load_glyphs(seed=...)``, which only draws the augmentation."""

MAX_ROTATION_DEGREES = 15.0
SIZE_RANGE = (0.62, 0.88)
"""Longer side of the rotated glyph's box, as a fraction of the image side."""
MAX_SHIFT = 0.1
"""Largest shift of the glyph's centre along each axis, as a fraction of the image side
(less when the glyph would leave the frame)."""
STROKE_LEVELS = 3
"""Stroke widths 0, 1, 2 pixels added around the glyph at the 64-pixel master size."""

_SUPERSAMPLE = 3  # draw at 3x the image size and average 3 x 3 blocks: smooth edges
_MASTER_SIDE = 64  # glyphs are rendered so that their ink's longer side is about this many pixels
_CANONICAL_BOX = 32  # side of the box the look-alike check compares glyphs in


class GlyphFont(NamedTuple):
    """One font file shipped with matplotlib."""

    name: str
    family: str
    filename: str


class GlyphClass(NamedTuple):
    """One class of the data set: a character and the fonts its images are drawn in."""

    char: str
    fonts: tuple[str, ...]
    script: str


FONTS = tuple(
    GlyphFont(f"{family} {style}".strip(), family, filename)
    for family, files in [
        (
            "DejaVu Sans",
            [
                ("", "DejaVuSans"),
                ("Bold", "DejaVuSans-Bold"),
                ("Oblique", "DejaVuSans-Oblique"),
                ("Bold Oblique", "DejaVuSans-BoldOblique"),
            ],
        ),
        (
            "DejaVu Serif",
            [
                ("", "DejaVuSerif"),
                ("Bold", "DejaVuSerif-Bold"),
                ("Italic", "DejaVuSerif-Italic"),
                ("Bold Italic", "DejaVuSerif-BoldItalic"),
            ],
        ),
        (
            "DejaVu Sans Mono",
            [
                ("", "DejaVuSansMono"),
                ("Bold", "DejaVuSansMono-Bold"),
                ("Oblique", "DejaVuSansMono-Oblique"),
                ("Bold Oblique", "DejaVuSansMono-BoldOblique"),
            ],
        ),
        (
            "STIX General",
            [
                ("", "STIXGeneral"),
                ("Bold", "STIXGeneralBol"),
                ("Italic", "STIXGeneralItalic"),
                ("Bold Italic", "STIXGeneralBolIta"),
            ],
        ),
    ]
    for style, stem in files
    for filename in [stem + ".ttf"]
)
"""The fonts drawn from. Left out: the Display fonts (a few dozen glyphs), STIX's
non-Unicode and size variants, LastResort (placeholder boxes), and the Computer Modern
files (their character maps follow TeX's encoding, not Unicode)."""

# Candidates in order of preference: of two look-alikes the earlier one stays.
CANDIDATES = "".join(
    [
        "0123456789",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "abcdefghijklmnopqrstuvwxyz",
        "ßÆæØøŒœÞþðŁłŊŋƏəƒħĦ",
        "ΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩ",
        "αβγδεζηθικλμνξοπρσςτυφχψωϑϕϖ",
        "АБВГДЕЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯЂЄЅІЇЈЉЊЋЏҐѢѲѴЎ",
        "абвгдежзийклмнопрстуфхцчшщъыьэюяђєѕіїјљњћџґѣ",
        "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
        "¡¢£¤¥¦§©«¬®°±¶·»¿×÷†‡•‰′″‹›‽…",
        "€₤₱₹ℏ№™",
        "∀∂∃∅∇∈∉∏∑−∓∗∘√∝∞∠∧∨∩∪∫∬∴∵∼≃≅≈≠≡≤≥⊂⊃⊆⊇⊕⊖⊗⊘⊙⊢⊣⊥⋄⋆⌈⌉⌊⌋⟨⟩",
        "←↑→↓↔↕⇐⇑⇒⇓⇔⇕↩↪↺↻↯↵⇄⇅",
        "■□▣▲△▶▷▼▽◀◁◆◇◉○◎●◐◑",
        "★☆☀☎☒☺☻☼☽☾♀♂♠♡♢♣♤♥♦♧♩♪♫♭♮♯⚠✂✉✓✠✪",
    ]
)

# Characters that look the same once the size is random; the first member present stays.
LOOKALIKE_GROUPS = (
    # Latin, Greek and Cyrillic capitals of the same shape (and their small-capital lower cases)
    "AΑА",
    "BΒВв",
    "CcСсϹϲ",
    "EΕЕ",
    "HΗНн",
    "KΚКкκ",
    "MΜМм",
    "NΝ",
    "PΡР",
    "TΤТт⊤",
    "XxΧХх×",
    "YΥҮ",
    "ZzΖ",
    "JЈ",
    "SsЅѕ",
    "VvνѴѵ∨",
    "Ww",
    "ΓГг",
    "ΠПп∏",
    "ΦФ",
    "ϕф",
    "Σ∑",
    "Δ∆△",
    "∇▽",
    "Λ∧",
    "ΘѲ",
    # round shapes: letters O, o, digit zero, circles
    "OoΟοОо0○◯",
    # vertical bars: one, capital I, small L, bar, iota, dotless i, apostrophe
    "1IlǀΙІӀ|ιı'",
    # small letters, digits and symbols with a twin in another script or Unicode block
    "aа",
    "eе",
    "iі",
    "jј",
    "pρр",
    "yу",
    "ïї",
    "ηŋ",
    "3Зз",
    "ħћℏ",
    "ƏӘ",
    "əә",
    "£₤",
    "∈ϵєЄ",
    "Ээ∋",
    "°∘",
    # Cyrillic lower case letters drawn as small capitals in upright fonts
    "Дд",
    "Жж",
    "Ии",
    "Йй",
    "Лл",
    "Цц",
    "Чч",
    "Шш",
    "Щщ",
    "Ъъ",
    "Ыы",
    "Ьь",
    "Юю",
    "Яя",
    "Љљ",
    "Њњ",
    "Џџ",
    "Ґґ",
    "Ѣѣ",
    # punctuation of the same shape
    "-−–—_‐",
    ".·•∙⋅●",
    ",’",
    '"″”',
    "*∗",
    "~∼",
    "/∕",
    "\\∖",
    "◇◊⋄",
    "◆♦",
    "<‹",
    ">›",
    # near-identical by glyph_similarity too; listed so that the class list does not hinge on a
    # correlation's last digit (0.90-0.95 with matplotlib 3.11's fonts)
    "AΛ",
    "[⌈",
    "]⌋",
    "⋆★",
)
"""Explicit look-alike groups: of each, only the first member among the candidates stays.
:func:`glyph_similarity` catches the near-identical pairs not listed."""


@functools.cache
def font_path(font: GlyphFont) -> Path:
    """The font's file in matplotlib's ``mpl-data/fonts/ttf`` folder."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / font.filename


@functools.lru_cache(maxsize=1)
def available_fonts() -> tuple[GlyphFont, ...]:
    """The fonts of :data:`FONTS` present in this matplotlib installation."""
    return tuple(font for font in FONTS if font_path(font).is_file())


def glyph_script(char: str) -> str:
    """``"Latin"``, ``"Greek"``, ``"Cyrillic"``, ``"digit"``, ``"punctuation"`` or ``"symbol"``."""
    category = unicodedata.category(char)
    if category == "Nd":
        return "digit"
    if category.startswith("L"):
        first_word = unicodedata.name(char, "").split(" ")[0]
        return first_word.capitalize() if first_word in ("LATIN", "GREEK", "CYRILLIC") else "symbol"
    return "punctuation" if category.startswith("P") else "symbol"


@functools.cache
def _charmap(font: GlyphFont) -> frozenset[int]:
    from matplotlib.ft2font import FT2Font

    return frozenset(FT2Font(str(font_path(font))).get_charmap())


@functools.lru_cache(maxsize=32)  # small: each open font costs a few hundred kB
def _pil_font(font: GlyphFont, size: int):
    from PIL import ImageFont

    # The basic layout engine does not depend on whether libraqm is installed.
    return ImageFont.truetype(str(font_path(font)), size, layout_engine=ImageFont.Layout.BASIC)


def _draw(char: str, font: GlyphFont, size: int, stroke: int):
    """The character in white on black, cropped to its ink (None when it leaves no ink)."""
    from PIL import Image, ImageDraw

    pil_font = _pil_font(font, size)
    left, top, right, bottom = pil_font.getbbox(char, stroke_width=stroke)
    pad = 2 + stroke
    image = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 0)
    ImageDraw.Draw(image).text(
        (pad - left, pad - top), char, font=pil_font, fill=255, stroke_width=stroke, stroke_fill=255
    )
    ink = image.getbbox()
    return image.crop(ink) if ink else None


def _fit_in_box(image, box: int) -> np.ndarray:
    """Scale the image so its longer side is ``box`` (aspect kept) and centre it in a uint8 box x box array."""
    from PIL import Image

    width, height = image.size
    scale = box / max(width, height)
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    canvas = Image.new("L", (box, box), 0)
    resized = image.resize(new_size, Image.Resampling.BILINEAR)
    canvas.paste(resized, ((box - new_size[0]) // 2, (box - new_size[1]) // 2))
    return np.asarray(canvas)


@functools.cache
def _probe(char: str, font: GlyphFont) -> tuple[int, np.ndarray | None]:
    """Draw the character once at a 64-pixel font size.

    Returns the font size at which its ink's longer side is about ``_MASTER_SIDE``
    pixels, and its canonical image (upright, no added stroke, ink fitted in a
    ``_CANONICAL_BOX`` square); ``(0, None)`` when the font draws no ink.
    """
    drawn = _draw(char, font, _MASTER_SIDE, 0)
    if drawn is None:
        return 0, None
    master_size = int(np.clip(round(_MASTER_SIDE * _MASTER_SIDE / max(drawn.size)), 8, 2048))
    canonical = _fit_in_box(drawn, _CANONICAL_BOX)
    canonical.setflags(write=False)  # cached: shared by every caller
    return master_size, canonical


def canonical_glyph(char: str, font: GlyphFont) -> np.ndarray:
    """The character upright, without added stroke, cropped to its ink and fitted in a 32 x 32 float array in [0, 1]."""
    canonical = _probe(char, font)[1]
    if canonical is None:
        raise ValueError(f"{font.name} draws no ink for {char!r}")
    return canonical / 255.0


@functools.cache
def covering_fonts(char: str) -> tuple[GlyphFont, ...]:
    """The available fonts whose character map holds ``char`` and that draw it with some ink."""
    return tuple(f for f in available_fonts() if ord(char) in _charmap(f) and _probe(char, f)[0] > 0)


def glyph_similarity(chars: str | list[str]) -> np.ndarray:
    """Look-alike measure of every pair of ``chars``: a symmetric ``(n, n)`` array.

    Each character is drawn upright in each font that covers it (:func:`canonical_glyph`:
    ink cropped and fitted in a 32 x 32 box, aspect kept); the entry of two characters is
    the Pearson correlation of their images, averaged over the fonts they share. Equal
    shapes give 1; a pair that shares no font gets 0 (nothing to compare).
    """
    chars = list(chars)
    fonts = available_fonts()
    total = np.zeros((len(chars), len(chars)))
    count = np.zeros((len(chars), len(chars)))
    covers = [set(covering_fonts(c)) for c in chars]
    for font in fonts:
        members = [i for i, cover in enumerate(covers) if font in cover]
        if not members:
            continue
        images = np.stack([canonical_glyph(chars[i], font).ravel() for i in members])
        images -= images.mean(axis=1, keepdims=True)
        images /= np.linalg.norm(images, axis=1, keepdims=True)
        total[np.ix_(members, members)] += images @ images.T
        count[np.ix_(members, members)] += 1
    return np.divide(total, count, out=np.zeros_like(total), where=count > 0)


def _well_covered(char: str) -> bool:
    fonts = covering_fonts(char)
    return len(fonts) >= MIN_FONTS and len({f.family for f in fonts}) >= MIN_FAMILIES


def _drop_listed_lookalikes(chars: list[str]) -> list[str]:
    dropped = set()
    present = set(chars)
    for group in LOOKALIKE_GROUPS:
        members = [c for c in dict.fromkeys(group) if c in present]
        dropped.update(members[1:])
    return [c for c in chars if c not in dropped]


def _interleave_scripts(chars: list[str], seed: int) -> list[str]:
    """Shuffle within each script, then spread each script evenly over the order.

    Every prefix (in particular the first half, the train classes of a class-disjoint
    split) then holds each script in about its overall proportion.
    """
    rng = np.random.default_rng(seed)
    scripts = sorted({glyph_script(c) for c in chars})
    keyed = []
    for script in scripts:
        members = [c for c in chars if glyph_script(c) == script]
        members = [members[i] for i in rng.permutation(len(members))]
        offset = rng.uniform()
        keyed.extend(((rank + offset) / len(members), c) for rank, c in enumerate(members))
    keyed.sort(key=lambda pair: pair[0])
    return [c for _, c in keyed]


@functools.lru_cache(maxsize=1)
def _select_classes() -> tuple[GlyphClass, ...]:
    covered = [c for c in dict.fromkeys(CANDIDATES) if _well_covered(c)]
    candidates = _drop_listed_lookalikes(covered)
    similarity = glyph_similarity(candidates)
    kept: list[int] = []
    for i in range(len(candidates)):
        if not kept or similarity[i, kept].max() <= LOOKALIKE_THRESHOLD:
            kept.append(i)
    chars = _interleave_scripts([candidates[i] for i in kept], CLASS_ORDER_SEED)
    return tuple(GlyphClass(c, tuple(f.name for f in covering_fonts(c)), glyph_script(c)) for c in chars)


def glyph_classes() -> list[GlyphClass]:
    """The classes in class-id order: ``(char, fonts, script)`` for each.

    The first call in a process takes a second or two: it renders every candidate in every font.
    """
    return list(_select_classes())


class GlyphAugmentations(NamedTuple):
    """The random drawing parameters of every image, each an array of shape ``(classes, images_per_class)``."""

    font: np.ndarray  # font name (str)
    stroke: np.ndarray  # stroke width level in 0 .. STROKE_LEVELS - 1
    angle: np.ndarray  # rotation in degrees, counter-clockwise
    size: np.ndarray  # longer side of the rotated glyph's box, as a fraction of the image side
    shift: np.ndarray  # (classes, images_per_class, 2): x and y shift in [-1, 1], times the room it may move


def sample_augmentations(images_per_class: int, seed: int = 0) -> GlyphAugmentations:
    """Draw the fonts and poses of every image with ``numpy.random.default_rng(seed)``.

    Within a class the fonts take turns in a random order, so each is used about equally
    often and ``images_per_class >= 3`` always shows at least three fonts.
    """
    classes = _select_classes()
    rng = np.random.default_rng(seed)
    shape = (len(classes), images_per_class)
    font = np.empty(shape, dtype=object)
    for c, glyph in enumerate(classes):
        order = rng.permutation(len(glyph.fonts))
        font[c] = [glyph.fonts[order[k % len(order)]] for k in range(images_per_class)]
    return GlyphAugmentations(
        font=font,
        stroke=rng.integers(0, STROKE_LEVELS, size=shape),
        angle=rng.uniform(-MAX_ROTATION_DEGREES, MAX_ROTATION_DEGREES, size=shape),
        size=rng.uniform(*SIZE_RANGE, size=shape),
        shift=rng.uniform(-1.0, 1.0, size=shape + (2,)),
    )


def _place(master, angle: float, size: float, shift: np.ndarray, side: int):
    """Rotate, scale and shift the cropped glyph onto a black ``side`` x ``side`` canvas.

    ``shift`` in [-1, 1] moves the centre by that fraction of the room it has along each
    axis: at most ``MAX_SHIFT * side``, and never so far that the glyph leaves the canvas.
    """
    from PIL import Image

    width, height = master.size
    cos, sin = np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))
    rotated_box = np.array([width * abs(cos) + height * abs(sin), width * abs(sin) + height * abs(cos)])
    scale = size * side / rotated_box.max()
    # free room on each side, less one output pixel so that smoothing never reaches the border
    room = np.clip((side - scale * rotated_box) / 2 - _SUPERSAMPLE, 0.0, MAX_SHIFT * side)
    centre_x, centre_y = side / 2 + shift * room
    # PIL maps each output pixel (x, y) back to the input pixel (a x + b y + c, d x + e y + f)
    a, b, d, e = cos / scale, -sin / scale, sin / scale, cos / scale
    coefficients = (a, b, width / 2 - a * centre_x - b * centre_y, d, e, height / 2 - d * centre_x - e * centre_y)
    return master.transform((side, side), Image.Transform.AFFINE, coefficients, Image.Resampling.BILINEAR)


def render_glyphs(images_per_class: int, image_size: int = 28, seed: int = 0) -> np.ndarray:
    """Render the data set: uint8 array ``(classes, images_per_class, image_size, image_size)``.

    Each glyph is drawn in its font at a size where its ink is about 64 pixels long
    (more for images above 28 pixels), thickened by its stroke level, placed by
    :func:`sample_augmentations`'s pose on a canvas three times the image size, and
    reduced by averaging 3 x 3 blocks (anti-aliasing).
    """
    classes = _select_classes()
    augmentations = sample_augmentations(images_per_class, seed)
    fonts_by_name = {f.name: f for f in available_fonts()}
    magnification = max(1.0, image_size / 28)
    side = image_size * _SUPERSAMPLE
    images = np.empty((len(classes), images_per_class, image_size, image_size), dtype=np.uint8)
    for c, glyph in enumerate(classes):
        for k in range(images_per_class):
            font = fonts_by_name[augmentations.font[c, k]]
            font_size = round(_probe(glyph.char, font)[0] * magnification)
            stroke = round(int(augmentations.stroke[c, k]) * magnification)
            master = _draw(glyph.char, font, font_size, stroke)
            pose = augmentations.angle[c, k], augmentations.size[c, k], augmentations.shift[c, k]
            placed = _place(master, *pose, side)
            images[c, k] = np.asarray(placed.reduce(_SUPERSAMPLE))
    return images


def _fonts_fingerprint() -> list[tuple[str, int]]:
    return [(f.filename, font_path(f).stat().st_size) for f in available_fonts()]


def cache_path(root: str | os.PathLike | None, images_per_class: int, image_size: int, seed: int) -> Path:
    """Where :func:`load_glyphs` keeps these images: ``<root>/glyphs-v<VERSION>-<hash of the arguments>.npz``."""
    folder = Path(root).expanduser() if root is not None else data_root()
    key = json.dumps(
        {
            "version": VERSION,
            "images_per_class": images_per_class,
            "image_size": image_size,
            "seed": seed,
            "fonts": _fonts_fingerprint(),
        },
        sort_keys=True,
    )
    return folder / f"glyphs-v{VERSION}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.npz"


def _read_cache(path: Path, images_per_class: int, image_size: int):
    try:
        with np.load(path, allow_pickle=False) as stored:
            images, class_names = stored["images"], [str(c) for c in stored["class_names"]]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None  # unreadable or truncated: render again
    if images.dtype != np.uint8 or images.shape != (len(class_names), images_per_class, image_size, image_size):
        return None
    return images, class_names


def _write_cache(path: Path, images: np.ndarray, class_names: list[str]) -> None:
    """Write to a temporary file in the same folder, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=path.stem + "-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez_compressed(file, images=images, class_names=np.array(class_names))
        os.chmod(temporary, 0o644)  # mkstemp makes the file private; a data file is for everyone to read
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_glyphs(
    root: str | os.PathLike | None = None,
    images_per_class: int = 24,
    image_size: int = 28,
    seed: int = 0,
    regenerate: bool = False,
) -> InMemoryDataset:
    """The glyphs data set: inputs ``(n, 1, image_size, image_size)`` float32 in [0, 1], white on black.

    Labels are class ids ``0 .. C-1`` (C is over 200), ``images_per_class`` images each,
    stored class after class; ``class_names`` are the characters themselves. The class
    order interleaves scripts, so both halves of
    :func:`~dmlnotes.data.splits.class_disjoint_split` mix letters, digits and symbols.

    Args:
        root: folder of the cache file; default :func:`~dmlnotes.data.paths.data_root`
            (``$DMLNOTES_DATA``, else the repository's ``data/``, else ``./data``).
            Created if missing.
        images_per_class: images drawn per character.
        image_size: side of the square images in pixels.
        seed: seed of the augmentation (font order, rotation, size, shift, stroke);
            the classes and their order do not depend on it.
        regenerate: render again even if a cache file exists (and overwrite it).

    The first call renders the images (a few seconds for the defaults) and writes
    ``glyphs-v<VERSION>-<hash>.npz`` in ``root``; later calls read that file.
    """
    images_per_class = check_positive_int("images_per_class", images_per_class)
    image_size = check_integer("image_size", image_size, minimum=8)
    seed = check_non_negative_int("seed", seed)
    path = cache_path(root, images_per_class, image_size, seed)
    cached = None if regenerate or not path.is_file() else _read_cache(path, images_per_class, image_size)
    if cached is None:
        images = render_glyphs(images_per_class, image_size, seed)
        class_names = [glyph.char for glyph in _select_classes()]
        _write_cache(path, images, class_names)
    else:
        images, class_names = cached
    num_classes = len(class_names)
    inputs = torch.from_numpy(images.reshape(-1, 1, image_size, image_size).astype(np.float32) / np.float32(255.0))
    labels = torch.arange(num_classes).repeat_interleave(images_per_class)
    return InMemoryDataset(inputs, labels, class_names, name="glyphs")


@functools.lru_cache(maxsize=2)
def glyphs_split(images_per_class: int = 24) -> tuple[InMemoryDataset, InMemoryDataset]:
    """Glyphs split class-disjointly: the first half of the classes train, the rest test.

    The data of the shared comparison (:mod:`dmlnotes.experiments.comparison`) and the
    glyphs temperature sweep. Cached in memory: every caller gets the same two data sets
    (so do not modify them).
    """
    return class_disjoint_split(load_glyphs(images_per_class=images_per_class))
