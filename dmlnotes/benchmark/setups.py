"""What the benchmark fixes for every loss: data, network, batches, optimiser, lengths, seeds.

One protocol for all losses (Musgrave, Belongie, Lim 2020, "A Metric Learning Reality
Check"): the same network and embedding size, the same P x K sampler, the same optimiser
and training lengths, and hyperparameters chosen on validation classes, a class-disjoint
part of the training classes, never on the test classes.

``"glyphs"`` runs on a laptop CPU: the lessons' shared setup (the small CNN, 64-d, Adam at
1e-3, batches of 16 classes x 4 images; :mod:`dmlnotes.experiments.comparison`).
``"omniglot"`` and ``"cub"`` read the real data sets from ``data/`` and are meant for a GPU
(CUB needs torchvision and the ImageNet ResNet-50 weights).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..checks import check_positive, check_positive_int


@dataclass(frozen=True)
class BenchmarkSetup:
    """Everything the benchmark holds fixed across losses.

    Attributes:
        name: ``"glyphs"``, ``"omniglot"`` or ``"cub"``.
        embedding_dim: dimension of the embedding.
        batch_size: images per batch (P x K with K from the recipe).
        lr: Adam's learning rate for the network (the recipe sets its loss's own rate).
        weight_decay: Adam's weight decay.
        lengths: the training lengths (steps) at which the final runs are measured.
        search_steps: length of the search runs on the validation classes.
        seeds: seeds of the final runs (at least 3 for an interval).
        search_seeds: seeds of each search run.
        validation_fraction: share of the training classes held out for the search.
        eval_batch_size: images per forward pass when embedding a test set.
        width: width of the small CNN (glyphs and Omniglot).
        image_size: side of the images the loader produces.
    """

    name: str
    embedding_dim: int = 64
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    lengths: tuple[int, ...] = (150, 300)
    search_steps: int = 150
    seeds: tuple[int, ...] = (0, 1, 2)
    search_seeds: tuple[int, ...] = (0,)
    validation_fraction: float = 0.25
    eval_batch_size: int = 512
    width: int = 16
    image_size: int = 28

    def __post_init__(self):
        if self.name not in SETUP_NAMES:
            raise ValueError(f"setup must be one of {SETUP_NAMES}, got {self.name!r}")
        for name in ("embedding_dim", "batch_size", "search_steps", "eval_batch_size", "width", "image_size"):
            check_positive_int(name, getattr(self, name))
        check_positive("lr", self.lr)
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if not self.lengths or len(set(self.lengths)) != len(self.lengths):
            raise ValueError(f"lengths must be distinct step counts, got {self.lengths!r}")
        for steps in self.lengths:
            check_positive_int("lengths", steps)
        object.__setattr__(self, "lengths", tuple(sorted(self.lengths)))
        if not self.seeds or not self.search_seeds:
            raise ValueError("seeds and search_seeds must each name at least one seed")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must lie strictly between 0 and 1, got {self.validation_fraction!r}")

    def make_model(self) -> nn.Module:
        """A freshly initialised network (seed first)."""
        if self.name == "cub":
            from ..models import resnet50_embedding

            return resnet50_embedding(self.embedding_dim, pretrained=True)
        from ..models import ConvEmbedding

        return ConvEmbedding(self.embedding_dim, width=self.width)

    def load(self, root=None):
        """``(train_set, test_set)``: the loaders' class-disjoint halves."""
        if self.name == "glyphs":
            from ..data import glyphs_split

            return glyphs_split()
        if self.name == "omniglot":
            from ..data import load_omniglot

            return (
                load_omniglot(root, "train", image_size=self.image_size),
                load_omniglot(root, "test", image_size=self.image_size),
            )
        from ..data import load_cub

        return load_cub(root, "train", image_size=self.image_size), load_cub(root, "test", image_size=self.image_size)


SETUP_NAMES = ("glyphs", "omniglot", "cub")

SETUPS: dict[str, BenchmarkSetup] = {
    "glyphs": BenchmarkSetup("glyphs"),
    # Omniglot's background alphabets (964 characters) train, its evaluation alphabets test.
    "omniglot": BenchmarkSetup(
        "omniglot", embedding_dim=64, width=32, lengths=(2000, 4000), search_steps=2000, eval_batch_size=1024
    ),
    # Musgrave et al.'s CUB protocol in spirit: an ImageNet ResNet-50, 128-d, batches of 32 x 4.
    "cub": BenchmarkSetup(
        "cub",
        embedding_dim=128,
        batch_size=128,
        lr=1e-5,
        weight_decay=1e-4,
        lengths=(2000, 4000),
        search_steps=2000,
        eval_batch_size=128,
        image_size=224,
    ),
}
"""The setups the command line offers by name."""


def resolve_setup(setup: str | BenchmarkSetup) -> BenchmarkSetup:
    if isinstance(setup, BenchmarkSetup):
        return setup
    try:
        return SETUPS[setup]
    except KeyError:
        raise ValueError(f"unknown setup {setup!r}; expected one of {list(SETUPS)}") from None
