"""Data for the lessons: bundled digits, generated glyphs, and real data sets when present."""

from .dataset import InMemoryDataset, as_label_tensor
from .digits import load_digits
from .samplers import ClassBalancedBatchSampler, RandomBatchSampler
from .splits import class_disjoint_split, stratified_split

__all__ = [
    "InMemoryDataset",
    "as_label_tensor",
    "load_digits",
    "ClassBalancedBatchSampler",
    "RandomBatchSampler",
    "class_disjoint_split",
    "stratified_split",
]
