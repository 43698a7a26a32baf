"""Promises every loss and miner keeps: bad batches refused by name, empty batches give an
exact zero, and every dtype on every available device gives finite values close to float64.

Devices: CPU always, CUDA and MPS when present; ``DMLNOTES_TEST_DEVICES=cpu,cuda`` picks them
(in the spirit of pytorch-metric-learning's ``TEST_DEVICE`` / ``TEST_DTYPES``).
"""

import os

import pytest
import torch

from dmlnotes.distances import EuclideanDistance
from dmlnotes.losses import (
    AngularLoss,
    ArcFaceLoss,
    BinomialDevianceLoss,
    CenterLoss,
    CircleLoss,
    ContrastiveLoss,
    CosFaceLoss,
    CoupledClustersLoss,
    DeepClusteringLoss,
    FacilityLocationLoss,
    HeatedUpSoftmaxLoss,
    L2SoftmaxLoss,
    LargeMarginSoftmaxLoss,
    LiftedStructureLoss,
    MarginLoss,
    MultiSimilarityLoss,
    NCALoss,
    NormFaceLoss,
    NormSoftmaxLoss,
    NPairLoss,
    ProxyAnchorLoss,
    ProxyNCALoss,
    RankedListLoss,
    SphereFaceLoss,
    TripletLoss,
)
from dmlnotes.miners import (
    AllTripletsMiner,
    BatchHardMiner,
    DistanceWeightedMiner,
    HardestNegativeMiner,
    MultiSimilarityMiner,
    RandomTripletsMiner,
    SemiHardNegativeMiner,
)

NUM_CLASSES, DIM = 4, 8

LOSSES = {
    "contrastive": lambda: ContrastiveLoss(),
    "contrastive (plain distance)": lambda: ContrastiveLoss(distance=EuclideanDistance()),
    "triplet": lambda: TripletLoss(margin=0.2),
    "triplet (plain distance)": lambda: TripletLoss(margin=0.2, distance=EuclideanDistance()),
    "angular": lambda: AngularLoss(),
    "angular (triplet form)": lambda: AngularLoss(form="triplet"),
    "margin": lambda: MarginLoss(),
    "margin (one beta per class, nu)": lambda: MarginLoss(num_classes=NUM_CLASSES, nu=0.01),
    "lifted structure": lambda: LiftedStructureLoss(),
    "lifted structure (hard)": lambda: LiftedStructureLoss(form="hard"),
    "N-pair": lambda: NPairLoss(),
    "N-pair (one pair per class)": lambda: NPairLoss(pairs="npair"),
    "coupled clusters": lambda: CoupledClustersLoss(),
    "center": lambda: CenterLoss(NUM_CLASSES, DIM, center_weight=0.5),
    "center (centres by gradient)": lambda: CenterLoss(NUM_CLASSES, DIM, center_weight=0.5, center_update="gradient"),
    "facility location": lambda: FacilityLocationLoss(),
    "facility location (greedy only)": lambda: FacilityLocationLoss(gamma=2.0, refine_steps=0),
    "NCA": lambda: NCALoss(),
    "proxy-NCA": lambda: ProxyNCALoss(NUM_CLASSES, DIM),
    "proxy-NCA (dynamic, eq. 12)": lambda: ProxyNCALoss(NUM_CLASSES, DIM, proxies_per_class=2),
    "proxy-anchor": lambda: ProxyAnchorLoss(NUM_CLASSES, DIM),
    "normalized softmax": lambda: NormSoftmaxLoss(NUM_CLASSES, DIM),
    "heated-up softmax": lambda: HeatedUpSoftmaxLoss(NUM_CLASSES, DIM),
    "large-margin softmax (L-softmax)": lambda: LargeMarginSoftmaxLoss(NUM_CLASSES, DIM),
    "large-margin softmax (m = 2, lambda = 10)": lambda: LargeMarginSoftmaxLoss(
        NUM_CLASSES, DIM, margin=2, lambda_=10.0
    ),
    "SphereFace softmax": lambda: SphereFaceLoss(NUM_CLASSES, DIM),
    "L2-softmax": lambda: L2SoftmaxLoss(NUM_CLASSES, DIM),
    "NormFace softmax": lambda: NormFaceLoss(NUM_CLASSES, DIM),
    "NormFace softmax, learned s": lambda: NormFaceLoss(NUM_CLASSES, DIM, learn_scale=True),
    "CosFace softmax": lambda: CosFaceLoss(NUM_CLASSES, DIM),
    "ArcFace softmax": lambda: ArcFaceLoss(NUM_CLASSES, DIM),
    "ArcFace softmax (easy margin)": lambda: ArcFaceLoss(NUM_CLASSES, DIM, easy_margin=True),
    "deep clustering": lambda: DeepClusteringLoss(),
    "deep clustering (not normalised)": lambda: DeepClusteringLoss(normalize_embeddings=False),
    "ranked list": lambda: RankedListLoss(),
    "ranked list (differentiated weights)": lambda: RankedListLoss(weights_as_constants=False),
    "multi-similarity": lambda: MultiSimilarityLoss(),
    "circle": lambda: CircleLoss(),
    "circle (PML's m and gamma)": lambda: CircleLoss(margin=0.4, gamma=80.0),
    "binomial deviance": lambda: BinomialDevianceLoss(),
}
MINERS = {
    "all triplets": AllTripletsMiner,
    "batch hard": BatchHardMiner,
    "distance weighted": lambda: DistanceWeightedMiner(seed=0),
    "hardest negative": HardestNegativeMiner,
    "multi-similarity (pairs)": MultiSimilarityMiner,
    "random triplets": lambda: RandomTripletsMiner(per_anchor=2, seed=0),
    "semi-hard": SemiHardNegativeMiner,
}


def available_devices() -> list[str]:
    configured = os.environ.get("DMLNOTES_TEST_DEVICES")
    if configured:
        return [name.strip() for name in configured.split(",") if name.strip()]
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    return devices


# Relative tolerance against float64, per dtype (bfloat16 keeps 8 bits of mantissa, float16 11).
TOLERANCE = {torch.float64: 1e-9, torch.float32: 1e-4, torch.float16: 2e-2, torch.bfloat16: 8e-2}


def batch(dtype=torch.float64, device="cpu", n=16, seed=0):
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(NUM_CLASSES).repeat_interleave(n // NUM_CLASSES)
    embeddings = torch.randn(n, DIM, generator=generator, dtype=torch.float64) * 0.5
    embeddings += 0.8 * torch.randn(NUM_CLASSES, DIM, generator=generator, dtype=torch.float64)[labels]
    return embeddings.to(device=device, dtype=dtype), labels.to(device)


def value_and_gradient(loss_fn, embeddings, labels):
    embeddings = embeddings.detach().clone().requires_grad_()
    loss = loss_fn(embeddings, labels)
    loss.backward()
    return loss.detach(), embeddings.grad


def fresh(name, device, dtype=torch.float64):
    torch.manual_seed(0)  # class weights and proxies start the same in every dtype
    return LOSSES[name]().to(device=device, dtype=torch.float64 if dtype == torch.float64 else torch.float32)


@pytest.mark.parametrize("device", available_devices())
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("name", list(LOSSES))
def test_every_dtype_and_device_is_finite_and_close_to_float64(name, dtype, device):
    embeddings, labels = batch(torch.float64, "cpu")
    reference, reference_grad = value_and_gradient(fresh(name, "cpu"), embeddings, labels)
    value, grad = value_and_gradient(
        fresh(name, device, dtype), embeddings.to(device=device, dtype=dtype), labels.to(device)
    )
    assert value.dtype == dtype and grad.dtype == dtype
    assert torch.isfinite(value) and torch.isfinite(grad).all()
    tol = TOLERANCE[dtype]
    assert abs(float(value) - float(reference)) <= tol * max(1.0, abs(float(reference)))
    scale = float(reference_grad.abs().max())
    assert float((grad.double().cpu() - reference_grad).abs().max()) <= 4 * tol * max(scale, 1e-3)


@pytest.mark.parametrize("device", available_devices())
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("name", list(MINERS))
def test_every_miner_gives_the_same_triplets_in_every_dtype(name, dtype, device):
    embeddings, labels = batch(torch.float64, "cpu")
    expected = [t.tolist() for t in MINERS[name]()(embeddings, labels)]
    found = MINERS[name]()(embeddings.to(device=device, dtype=dtype), labels.to(device))
    assert all(t.device.type == torch.device(device).type and t.dtype == torch.long for t in found)
    if dtype in (torch.float32, torch.float64) or name in ("all triplets", "random triplets"):
        assert [t.tolist() for t in found] == expected  # low precision may break near-ties differently


@pytest.mark.parametrize("name", list(LOSSES))
def test_an_empty_batch_gives_an_exact_zero(name):
    loss_fn = fresh(name, "cpu")
    embeddings = torch.zeros(0, DIM, dtype=torch.float64, requires_grad=True)
    loss = loss_fn(embeddings, torch.zeros(0, dtype=torch.long))
    loss.backward()
    assert loss.item() == 0.0 and embeddings.grad.shape == (0, DIM)


# Contrastive, deep clustering, ranked list, margin, multi-similarity and binomial deviance have negative
# pairs to learn from here; the class-weight losses always have terms.
HAVE_NEGATIVES_TO_LEARN_FROM = (
    "contrastive",
    "deep clustering",
    "ranked list",
    "multi-similarity",
    "binomial",
    "margin",
)
CLASS_WEIGHT_NAMES = ("softmax", "proxy", "center")


@pytest.mark.parametrize(
    "name",
    [
        n
        for n in LOSSES
        if not n.startswith(HAVE_NEGATIVES_TO_LEARN_FROM) and not any(w in n for w in CLASS_WEIGHT_NAMES)
    ],
)
def test_a_batch_with_nothing_to_learn_is_exactly_zero_even_when_its_sum_overflows(name):
    # One sample per class: no positive pair. float16 values whose sum overflows to inf.
    loss_fn = fresh(name, "cpu", torch.float16)
    embeddings = (3000.0 + torch.arange(NUM_CLASSES * DIM).reshape(NUM_CLASSES, DIM)).to(torch.float16)
    assert torch.isinf(embeddings.sum())
    embeddings.requires_grad_()
    loss = loss_fn(embeddings, torch.arange(NUM_CLASSES))
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(embeddings.grad, torch.zeros_like(embeddings))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize("name", list(LOSSES))
def test_a_non_finite_row_is_refused_by_name(name, bad):
    embeddings, labels = batch()
    embeddings[5, 2] = bad
    with pytest.raises(ValueError, match=r"embeddings contain NaN or inf in 1 of 16 rows \(5\)"):
        fresh(name, "cpu")(embeddings, labels)


@pytest.mark.parametrize("name", list(MINERS))
def test_miners_refuse_non_finite_rows_and_handle_an_empty_batch(name):
    embeddings, labels = batch()
    embeddings[3, 0] = float("nan")
    with pytest.raises(ValueError, match=r"NaN or inf in 1 of 16 rows \(3\)"):
        MINERS[name]()(embeddings, labels)
    triplets = MINERS[name]()(torch.zeros(0, DIM), torch.zeros(0, dtype=torch.long))
    assert all(t.numel() == 0 for t in triplets)


PAIR_AND_TRIPLET_LOSSES = (
    "contrastive",
    "triplet",
    "lifted",
    "multi-similarity",
    "circle",
    "binomial",
    "angular",
    "margin",
)


@pytest.mark.parametrize("name", [n for n in LOSSES if not n.startswith(PAIR_AND_TRIPLET_LOSSES)])
def test_losses_that_compare_with_everything_refuse_a_miners_tuple(name):
    embeddings, labels = batch()
    with pytest.raises(ValueError, match="does not take an indices_tuple"):
        fresh(name, "cpu")(embeddings, labels, AllTripletsMiner()(embeddings, labels))


@pytest.mark.parametrize("name", list(LOSSES))
def test_every_loss_takes_every_reduction_and_fills_its_stats(name):
    from dmlnotes.losses import REDUCTIONS

    embeddings, labels = batch()
    values = {}
    for reduction in REDUCTIONS:
        torch.manual_seed(0)
        loss_fn = LOSSES[name]().double()
        loss_fn.reduction = reduction
        values[reduction] = loss_fn(embeddings, labels).item()
        stats = loss_fn.last_stats
        assert stats is not None and 0 < stats.num_active <= stats.num_terms
    penalty = 0.0
    penalty_weight = {"N-pair": "l2_reg", "margin": "nu"}.get(name.split(" ")[0])
    if penalty_weight:  # added once after the reduction, whatever it is
        torch.manual_seed(0)
        no_penalty = LOSSES[name]().double()
        setattr(no_penalty, penalty_weight, 0.0)
        no_penalty.reduction = "mean"
        penalty = values["mean"] - no_penalty(embeddings, labels).item()
    mean, nonzero, total = (values[r] - penalty for r in ("mean", "mean_nonzero", "sum"))
    # Each is the sum divided by a count: of the active terms, and of all terms (of the
    # classes for coupled clusters, whose terms are class members but whose mean is per class).
    assert total / nonzero == pytest.approx(stats.num_active, rel=1e-9)
    if name != "coupled clusters":
        assert total / mean == pytest.approx(stats.num_terms, rel=1e-9)
        assert nonzero >= mean - 1e-12


def test_an_unknown_reduction_is_named():
    with pytest.raises(ValueError, match="reduction must be one of"):
        NCALoss(reduction="median")


def test_class_weight_losses_give_their_weights_their_own_learning_rate():
    loss_fn = ProxyNCALoss(NUM_CLASSES, DIM)
    group = loss_fn.parameter_group(lr=0.5)
    assert group["lr"] == 0.5 and [p is loss_fn.weight for p in group["params"]] == [True]
    optimizer = torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 1e-3}, group])
    assert optimizer.param_groups[1]["lr"] == 0.5
    with pytest.raises(ValueError, match="lr must be a positive"):
        loss_fn.parameter_group(lr=0)
    with pytest.raises(ValueError, match="num_classes must be an integer >= 2"):
        NormSoftmaxLoss(1, DIM)
