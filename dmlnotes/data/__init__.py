"""Data for the lessons: bundled digits, generated glyphs, and real data sets when present."""

from .cub import load_cub
from .dataset import InMemoryDataset, as_label_tensor
from .digits import load_digits
from .glyphs import glyph_classes, glyphs_split, load_glyphs
from .images import ImageFileDataset
from .omniglot import load_omniglot
from .paths import DatasetNotFoundError, data_root
from .samplers import ClassBalancedBatchSampler, RandomBatchSampler
from .splits import class_disjoint_split, stratified_split

__all__ = [
    "InMemoryDataset",
    "ImageFileDataset",
    "DatasetNotFoundError",
    "as_label_tensor",
    "data_root",
    "load_digits",
    "load_glyphs",
    "glyph_classes",
    "glyphs_split",
    "load_cub",
    "load_omniglot",
    "ClassBalancedBatchSampler",
    "RandomBatchSampler",
    "class_disjoint_split",
    "stratified_split",
]
