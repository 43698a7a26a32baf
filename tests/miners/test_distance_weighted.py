"""Tests of dmlnotes.miners.distance_weighted (Wu et al. 2017)."""

import math

import pytest
import torch
import torch.nn.functional as F

from dmlnotes.miners import DistanceWeightedMiner, log_sphere_distance_density


def test_density_matches_a_monte_carlo_histogram_in_16_dimensions():
    generator = torch.Generator().manual_seed(0)
    x = F.normalize(torch.randn(200_000, 16, generator=generator, dtype=torch.float64), dim=1)
    y = F.normalize(torch.randn(200_000, 16, generator=generator, dtype=torch.float64), dim=1)
    distances = (x - y).norm(dim=1)
    edges = torch.linspace(0.0, 2.0, 41, dtype=torch.float64)
    counts = torch.histc(distances, bins=40, min=0.0, max=2.0)
    histogram = counts / (len(distances) * (edges[1] - edges[0]))
    centres = (edges[1:] + edges[:-1]) / 2
    density = log_sphere_distance_density(centres, 16).exp()
    # Peak near sqrt 2 of height about 2.2; bins of width 0.05: loose tolerance.
    assert float((histogram - density).abs().max()) < 0.05 * float(density.max())
    # And it integrates to 1 over (0, 2).
    grid = torch.linspace(1e-6, 2 - 1e-6, 200_001, dtype=torch.float64)
    assert float(torch.trapezoid(log_sphere_distance_density(grid, 16).exp(), grid)) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("dim", [3, 16, 128])
def test_sampling_probabilities_are_proportional_to_one_over_q_of_the_clipped_distance(dim):
    generator = torch.Generator().manual_seed(1)
    # A shared direction brings distances below sqrt 2 (random pairs in 128 dimensions sit at ~1.41 > 1.4).
    embeddings = torch.randn(12, dim, generator=generator, dtype=torch.float64)
    embeddings += 1.2 * torch.randn(1, dim, generator=generator, dtype=torch.float64)
    labels = torch.arange(3).repeat_interleave(4)
    miner = DistanceWeightedMiner()
    probabilities = miner.sampling_probabilities(embeddings, labels)
    assert ((probabilities > 0).sum(dim=1) >= 3).all()  # every anchor has several candidates to weigh
    unit = F.normalize(embeddings, dim=1)
    n = dim
    for i in range(12):
        log_weights = {}  # candidate negative j -> log(1 / q(max(d, 0.5))) up to a constant
        for j in range(12):
            d = float((unit[i] - unit[j]).norm())
            if labels[j] != labels[i] and d < 1.4:
                d = max(d, 0.5)
                # Written in the log domain: d^{n-2} underflows for n = 128.
                log_weights[j] = -((n - 2) * math.log(d) + (n - 3) / 2 * math.log(1 - d * d / 4))
        expected = torch.zeros(12, dtype=torch.float64)
        if log_weights:
            top = max(log_weights.values())
            for j, w in log_weights.items():
                expected[j] = math.exp(w - top)
            expected /= expected.sum()
        torch.testing.assert_close(probabilities[i], expected)


def test_draws_follow_the_probabilities_and_are_seeded():
    generator = torch.Generator().manual_seed(2)
    embeddings = torch.randn(8, 3, generator=generator, dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    miner = DistanceWeightedMiner(seed=5)
    probabilities = miner.sampling_probabilities(embeddings, labels)
    counts = torch.zeros(8, 8, dtype=torch.float64)
    draws = 3000
    for _ in range(draws):
        anchors, positives, negatives = miner(embeddings, labels)
        assert (labels[anchors] == labels[positives]).all() and (labels[anchors] != labels[negatives]).all()
        counts.index_put_((anchors, negatives), torch.ones(len(anchors), dtype=torch.float64), accumulate=True)
    # Each anchor has one positive here, so one draw per anchor and round.
    frequencies = counts / draws
    has_any = probabilities.sum(dim=1) > 0
    assert has_any.any()
    assert float((frequencies[has_any] - probabilities[has_any]).abs().max()) < 0.04
    # The same seed gives the same triplets.
    first = [t.tolist() for t in DistanceWeightedMiner(seed=3)(embeddings, labels)]
    assert first == [t.tolist() for t in DistanceWeightedMiner(seed=3)(embeddings, labels)]


def test_every_positive_pair_gets_one_negative_closer_than_the_cutoff():
    generator = torch.Generator().manual_seed(4)
    embeddings = torch.randn(16, 4, generator=generator)
    labels = torch.arange(4).repeat_interleave(4)
    anchors, positives, negatives = DistanceWeightedMiner(seed=0)(embeddings, labels)
    unit = F.normalize(embeddings, dim=1)
    assert ((unit[anchors] - unit[negatives]).norm(dim=1) < 1.4).all()
    assert len(anchors) <= 16 * 3


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match="cutoff"):
        DistanceWeightedMiner(cutoff=0.0)
    with pytest.raises(ValueError, match="nonzero_loss_cutoff must be larger"):
        DistanceWeightedMiner(cutoff=1.5, nonzero_loss_cutoff=1.4)
    with pytest.raises(ValueError, match="seed"):
        DistanceWeightedMiner(seed=1.5)
    with pytest.raises(ValueError, match="dim"):
        log_sphere_distance_density(torch.tensor([1.0]), 1)
