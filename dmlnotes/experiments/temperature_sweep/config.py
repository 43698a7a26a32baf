"""What a sweep fixes: the survey's Table 1, and the two setups with their configurations.

``"glyphs"`` (:data:`GLYPHS`; seconds per network on one core of a laptop CPU)
    Glyphs split class-disjointly (148 train, 147 test classes), the shared small CNN
    (:class:`~dmlnotes.models.ConvEmbedding`, width 16, 64-d) trained from scratch, batches
    of 16 classes x 4 images, 300 steps of SGD with momentum 0.9, learning rate 0.01,
    weight decay 1e-4. SGD, as Zhai & Wu: the loss's gradient carries a factor ``1 / T``
    (eq. (22)), and with SGD that factor reaches the weights. Adam divides every gradient
    by its running root-mean-square, which cancels a constant factor, so an Adam sweep
    measures only how ``T`` reweights samples and classes, not how it rescales the step.

``"cub"`` (:data:`CUB`; a CUDA GPU and the data set)
    Zhai & Wu's recipe (``azgo14/classification_metric_learning``): CUB-200-2011 from
    ``data/CUB_200_2011`` (:func:`dmlnotes.data.load_cub`; classes 1-100 train, 101-200
    test), an ImageNet ResNet-50 with global average pooling, LayerNorm without affine,
    L2 normalisation in the loss (:func:`dmlnotes.models.resnet50_embedding`; 2048-d by
    default, so no extra linear layer), batches of 3 classes x 25 images, SGD with
    momentum 0.9, weight decay 1e-4, learning rate 0.001 dropped tenfold after 15 of 30
    epochs, and a first epoch that trains only the new layers and the class weights.
    Needs torchvision and the ResNet-50 weights in the torch hub cache; about an hour per
    run on one GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...checks import check_non_negative_int, check_positive, check_positive_int

TABLE1_TEMPERATURES: tuple[float, ...] = (0.005, 0.01, 0.03, 0.05, 0.1, 0.5, 1.0)
"""The temperatures of the survey's Table 1."""

TABLE1_RECALL_AT_1: tuple[float, ...] = (19.3, 38.8, 57.0, 61.3, 61.6, 54.8, 50.5)
"""Recall@1 (%) on CUB-200-2011 test classes at each of :data:`TABLE1_TEMPERATURES` (survey Table 1, from Zhai & Wu)."""

SETUPS = ("glyphs", "cub")


@dataclass(frozen=True)
class SweepConfig:
    """Everything a sweep fixes except the temperature and the seed.

    Attributes:
        name: ``"glyphs"`` or ``"cub"`` (which data and which default network).
        embedding_dim: dimension of the embedding (and of the class weights).
        steps: SGD steps on all parameters, after the warm-up.
        warmup_steps: first steps that train only the new layers and the class weights
            (Zhai & Wu's warm-up epoch; 0 for a network trained from scratch).
        lr: learning rate of SGD (all parameters, class weights included).
        lr_drop_steps: distinct steps (counted from 1 after the warm-up) after which the rate
            is multiplied by ``lr_drop_factor`` (:class:`~torch.optim.lr_scheduler.MultiStepLR`).
        lr_drop_factor: the factor of each drop.
        momentum, weight_decay: of SGD.
        classes_per_batch, samples_per_class: the P x K class-balanced batches.
        width: width of :class:`~dmlnotes.models.ConvEmbedding` (glyphs only).
        image_size: side of the CUB crops (cub only).
        eval_batch_size: images per forward pass when embedding the test set.
        diagnostic_samples: about this many training images (whole P x K batches from a
            sampler with a fixed seed) on which the true-class probability and the
            gradient shares are measured after training.
        cpu_threads: torch's CPU threads during the sweep (restored afterwards), or None
            for torch's default. The glyphs setup uses 1: its convolutions are too small to
            gain much from a second thread (on an idle 2-core CPU about 6.5 s per network
            with 1 thread, 5 s with 2), and two threads slow down several-fold when other
            processes compete for the cores.
    """

    name: str
    embedding_dim: int
    steps: int
    warmup_steps: int = 0
    lr: float = 0.01
    lr_drop_steps: tuple[int, ...] = ()
    lr_drop_factor: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    classes_per_batch: int = 16
    samples_per_class: int = 4
    width: int = 16
    image_size: int = 224
    eval_batch_size: int = 256
    diagnostic_samples: int = 1024
    cpu_threads: int | None = None

    def __post_init__(self):
        if self.name not in SETUPS:
            raise ValueError(f"setup must be one of {SETUPS}, got {self.name!r}")
        for name in (
            "embedding_dim",
            "steps",
            "classes_per_batch",
            "samples_per_class",
            "width",
            "image_size",
            "eval_batch_size",
            "diagnostic_samples",
        ):
            check_positive_int(name, getattr(self, name))
        check_non_negative_int("warmup_steps", self.warmup_steps)
        for step in self.lr_drop_steps:
            check_positive_int("lr_drop_steps", step)
        if len(set(self.lr_drop_steps)) != len(self.lr_drop_steps):
            # MultiStepLR would drop twice at a repeated step
            raise ValueError(f"lr_drop_steps must be distinct, got {self.lr_drop_steps!r}")
        check_positive("lr", self.lr)
        check_positive("lr_drop_factor", self.lr_drop_factor)
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must lie in [0, 1), got {self.momentum!r}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.cpu_threads is not None:
            check_positive_int("cpu_threads", self.cpu_threads)


GLYPHS = SweepConfig(
    name="glyphs",
    embedding_dim=64,
    steps=300,
    lr=0.01,
    classes_per_batch=16,
    samples_per_class=4,
    width=16,
    cpu_threads=1,
)
"""The CPU setup: glyphs, ConvEmbedding (width 16, 64-d) from scratch, 16 x 4 batches, 300 SGD steps, 1 CPU thread."""

CUB_TRAIN_IMAGES = 5864
CUB_STEPS_PER_EPOCH = CUB_TRAIN_IMAGES // 75
CUB = SweepConfig(
    name="cub",
    embedding_dim=2048,
    steps=30 * CUB_STEPS_PER_EPOCH,
    warmup_steps=CUB_STEPS_PER_EPOCH,
    lr=0.001,
    lr_drop_steps=(15 * CUB_STEPS_PER_EPOCH,),
    classes_per_batch=3,
    samples_per_class=25,
    image_size=224,
    eval_batch_size=128,
    diagnostic_samples=750,
)
"""Zhai & Wu's CUB-200-2011 recipe: one warm-up epoch, then 30 epochs (78 steps each) with a tenfold drop after 15."""

CONFIGS = {"glyphs": GLYPHS, "cub": CUB}


def resolve_setup(setup: str | SweepConfig) -> SweepConfig:
    """The :class:`SweepConfig` of ``"glyphs"`` or ``"cub"``, or ``setup`` itself."""
    if isinstance(setup, SweepConfig):
        return setup
    if setup not in CONFIGS:
        raise ValueError(f"setup must be one of {SETUPS} (or a SweepConfig), got {setup!r}")
    return CONFIGS[setup]
