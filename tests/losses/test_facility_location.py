import itertools
import math

import pytest
import torch
from sklearn.metrics import normalized_mutual_info_score

from dmlnotes.distances import CosineSimilarity, EuclideanDistance, SquaredEuclideanDistance
from dmlnotes.losses import FacilityLocationLoss
from dmlnotes.losses.facility_location import (
    facility_location,
    greedy_medoids,
    nearest_medoid,
    oracle_medoids,
    oracle_score,
    refine_medoids,
)
from loss_testing import PAIRWISE_TOLERANCES, assert_same_value_and_grad, check_empty_batch


# Brute force: loops over samples and medoid sets, scikit-learn's NMI ---------------------------------
def loop_distances(x):
    """Euclidean distances between the L2-normalised rows, one pair at a time (differentiable)."""
    unit = [row / torch.sqrt((row * row).sum()) for row in x]
    zero = x.new_zeros(())
    return [
        [zero if i == j else torch.sqrt(((unit[i] - unit[j]) ** 2).sum()) for j in range(len(x))] for i in range(len(x))
    ]


def as_float(value):
    return float(value.detach()) if isinstance(value, torch.Tensor) else value


def values(distances):
    return [[as_float(d) for d in row] for row in distances]


def loop_facility_location(distances, medoids):
    """Eq. (8): -sum_i min_{j in S} D_ij."""
    return -sum(min((row[j] for j in medoids), key=as_float) for row in distances)


def loop_assignment(distances, medoids):
    """Nearest medoid's position (the first on equal distances); a medoid in its own cluster."""
    assignment = []
    for i, row in enumerate(distances):
        if i in medoids:
            assignment.append(list(medoids).index(i))
        else:
            assignment.append(min(range(len(medoids)), key=lambda k: (as_float(row[medoids[k]]), k)))
    return assignment


def loop_oracle(distances, labels):
    """Eq. (9): per class, the best single medoid's F on the class's members."""
    total = 0.0
    for k in sorted(set(labels)):
        members = [i for i, label in enumerate(labels) if label == k]
        total = total + max((-sum(distances[i][j] for i in members) for j in members), key=as_float)
    return total


def nmi(labels, assignment):
    return normalized_mutual_info_score(labels, assignment, average_method="geometric")


def augmented(distances, labels, medoids, gamma):
    """F(S) + gamma * (1 - NMI(y(S), y*)) from plain floats."""
    delta = 1.0 - nmi(labels, loop_assignment(distances, medoids))
    return loop_facility_location(distances, medoids) + gamma * delta


def exhaustive_best(distances, labels, gamma):
    """The exact max of the augmented objective over all sets of K = number of classes medoids."""
    k = len(set(labels))
    return max(
        (augmented(distances, labels, list(s), gamma), list(s)) for s in itertools.combinations(range(len(labels)), k)
    )


def assert_greedy_choices_maximise_the_objective(distances, labels, chosen, gamma):
    """Each choice maximises F(S + {j}) + gamma (1 - NMI), computed by loops, given the choices before it
    (within rounding: two candidates can tie exactly, e.g. the two points of a pair)."""
    for step, choice in enumerate(chosen):
        before = chosen[:step]
        scores = {j: augmented(distances, labels, before + [j], gamma) for j in range(len(labels)) if j not in before}
        assert scores[choice] >= max(scores.values()) - 1e-12, f"step {step}: {choice} is not a best candidate"


def loop_refine(distances, labels, medoids, gamma, passes):
    """The refinement one cluster at a time: its best member as medoid if that raises the objective."""
    medoids = list(medoids)
    for _ in range(passes):
        swapped = False
        for k in range(len(medoids)):
            assignment = loop_assignment(distances, medoids)
            best, best_score = medoids[k], augmented(distances, labels, medoids, gamma)
            for member in (i for i in range(len(labels)) if assignment[i] == k):
                score = augmented(distances, labels, medoids[:k] + [member] + medoids[k + 1 :], gamma)
                if score > best_score:
                    best, best_score = member, score
            swapped |= best != medoids[k]
            medoids[k] = best
        if not swapped:
            break
    return medoids


def swaps(distances, labels, medoids):
    """Every refinement move of ``medoids``: one cluster's medoid replaced by another member of that cluster."""
    assignment = loop_assignment(distances, medoids)
    for k in range(len(medoids)):
        for member in (i for i in range(len(labels)) if assignment[i] == k and i != medoids[k]):
            yield medoids[:k] + [member] + medoids[k + 1 :]


def brute_force_loss(x, labels, gamma):
    """Eq. (10) with the exact max over medoid sets, differentiable through the distances."""
    distances = loop_distances(x)
    plain = values(distances)
    _, best = exhaustive_best(plain, labels, gamma)
    delta = 1.0 - nmi(labels, loop_assignment(plain, best))
    return torch.relu(loop_facility_location(distances, best) + gamma * delta - loop_oracle(distances, labels))


def random_batch(seed, classes, per_class, dim=3, dtype=torch.float64, spread=1.0):
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(classes).repeat_interleave(per_class)
    x = torch.randn(len(labels), dim, generator=generator, dtype=torch.float64)
    x = x + spread * torch.randn(classes, dim, generator=generator, dtype=torch.float64)[labels]
    return x.to(dtype), labels


def our_distances(x):
    return EuclideanDistance(normalize_embeddings=True)(x)


# Eqs. (8), (9), (10) against loops ------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_facility_location_and_oracle_score_match_loops(dtype):
    x, labels = random_batch(0, classes=3, per_class=4, dtype=dtype)
    labels = labels[torch.randperm(12, generator=torch.Generator().manual_seed(1))]
    medoids = torch.tensor([7, 2, 10])
    tol = PAIRWISE_TOLERANCES[dtype]
    assert_same_value_and_grad(
        lambda z: facility_location(our_distances(z), medoids),
        lambda z: loop_facility_location(loop_distances(z), medoids.tolist()),
        x,
        tol,
    )
    assert_same_value_and_grad(
        lambda z: oracle_score(our_distances(z), labels, 3),
        lambda z: loop_oracle(loop_distances(z), labels.tolist()),
        x,
        tol,
    )
    plain = values(loop_distances(x.double()))
    expected = [
        min(
            (j for j in range(12) if labels[j] == k),
            key=lambda j: sum(plain[i][j] for i in range(12) if labels[i] == k),
        )
        for k in range(3)
    ]
    assert oracle_medoids(our_distances(x), labels, 3).tolist() == expected


def loss_at(x, labels, medoids, gamma):
    """Eq. (10) at given medoids, by loops and scikit-learn's NMI, differentiable through the distances."""
    distances = loop_distances(x)
    delta = 1.0 - nmi(labels, loop_assignment(values(distances), medoids))
    return torch.relu(loop_facility_location(distances, medoids) + gamma * delta - loop_oracle(distances, labels))


def compare_with_exhaustive_search(seed, gamma, dtype):
    """Compare the loss on a 9-point batch with eq. (10) by loops; True if its search found the exact max."""
    x, labels = random_batch(seed, classes=3, per_class=3, dtype=dtype, spread=0.7)
    classes = labels.tolist()
    loss_fn = FacilityLocationLoss(gamma=gamma)
    found = loss_fn.medoids(x, labels)
    best, _ = exhaustive_best(values(loop_distances(x.double())), classes, gamma)
    exact = found.augmented_score >= best - 1e-5

    def reference(z):
        return brute_force_loss(z, classes, gamma) if exact else loss_at(z, classes, found.chosen.tolist(), gamma)

    tol = PAIRWISE_TOLERANCES[dtype]
    value, _ = assert_same_value_and_grad(lambda z: loss_fn(z, labels), reference, x, tol)
    assert value <= brute_force_loss(x.double(), classes, gamma) + 1e-5
    return exact


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_loss_matches_the_exhaustive_brute_force(dtype):
    # 9 points, 3 classes: 84 medoid sets, searched exhaustively. Where the loss's search
    # finds the exact max of eq. (10), the loss is eq. (10) itself, value and gradient;
    # where it does not, the loss is eq. (10) at its medoids, at most the exact value (a
    # search can only underestimate the max). Both kinds occur on these 12 batches.
    exact = [compare_with_exhaustive_search(seed, gamma, dtype) for seed in range(4) for gamma in (0.5, 1.0, 2.0)]
    assert 6 <= sum(exact) < len(exact)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_loss_at_the_chosen_medoids_matches_a_loop_on_a_larger_batch(dtype):
    # Too many sets for an exhaustive search: the loss is eq. (10) at the medoids the
    # search chose, F~ at the classes' own medoids.
    x, labels = random_batch(4, classes=4, per_class=6, dim=5, dtype=dtype, spread=0.8)
    loss_fn = FacilityLocationLoss(gamma=1.5)
    found = loss_fn.medoids(x, labels)
    chosen = found.chosen.tolist()

    value, grad = assert_same_value_and_grad(
        lambda z: loss_fn(z, labels), lambda z: loss_at(z, labels.tolist(), chosen, 1.5), x, PAIRWISE_TOLERANCES[dtype]
    )
    assert value > 0 and grad.abs().sum() > 0
    assert found.nmi == pytest.approx(nmi(labels.tolist(), found.assignment.tolist()), abs=1e-12)
    assert found.loss == pytest.approx(float(value), rel=1e-4)


def test_hand_computed_four_points_on_a_circle():
    # Angles 0, 60 (class a) and 180, 240 degrees (class b), at different norms (the loss
    # normalises). Chords: 60 deg -> 1, 120 deg -> sqrt 3, 180 deg -> 2. Each class's medoid
    # costs 1: F~ = -2. Medoids {0, 1} (one per class a point) send 2 to 1 and 3 to 0:
    # F = -2 sqrt 3, clusters {0, 3}, {1, 2} are independent of the classes: NMI = 0.
    # Every set with one medoid per class scores F = -2, NMI = 1; {2, 3} mirrors {0, 1}.
    # gamma = 1: max(-2 sqrt 3 + 1, -2) = -2, loss 0. gamma = 2: -2 sqrt 3 + 2 wins, loss 4 - 2 sqrt 3.
    angles = torch.tensor([0.0, 60.0, 180.0, 240.0], dtype=torch.float64) * math.pi / 180
    norms = torch.tensor([1.0, 3.0, 0.5, 2.0], dtype=torch.float64)
    x = norms[:, None] * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    labels = torch.tensor([0, 0, 1, 1])
    assert float(FacilityLocationLoss(gamma=1.0)(x, labels)) == pytest.approx(0.0, abs=1e-12)
    loss_fn = FacilityLocationLoss(gamma=2.0)
    assert float(loss_fn(x, labels)) == pytest.approx(4 - 2 * math.sqrt(3), abs=1e-12)
    assert sorted(loss_fn.last_medoids.chosen.tolist()) == [0, 1] and loss_fn.last_medoids.nmi == 0.0
    assert loss_fn.last_medoids.oracle_score == pytest.approx(-2.0, abs=1e-12)


# Loss-augmented inference against exhaustive search and against plain loops --------------------------
@pytest.mark.parametrize("gamma", [0.0, 1.0, 3.0])
def test_vectorised_greedy_and_refinement_agree_with_plain_loops(gamma):
    for seed in range(3):
        x, labels = random_batch(seed, classes=4, per_class=4, spread=0.6)
        labels = labels[torch.randperm(16, generator=torch.Generator().manual_seed(seed))]
        distances = our_distances(x)
        plain, classes = values(distances), labels.tolist()
        greedy = greedy_medoids(distances, labels, 4, gamma)
        assert_greedy_choices_maximise_the_objective(plain, classes, greedy.tolist(), gamma)
        for passes in (1, 2):
            once = refine_medoids(distances, labels, greedy, gamma, passes=passes).tolist()
            assert once == loop_refine(plain, classes, greedy.tolist(), gamma, passes=passes)
        refined = refine_medoids(distances, labels, greedy, gamma, passes=50).tolist()
        # Converged (50 passes are far more than needed): no single swap raises the objective.
        score = augmented(plain, classes, refined, gamma)
        assert score >= augmented(plain, classes, greedy.tolist(), gamma) - 1e-12
        assert all(augmented(plain, classes, other, gamma) <= score + 1e-12 for other in swaps(plain, classes, refined))


def test_greedy_skips_only_candidates_that_cannot_win(monkeypatch):
    # Tight, far-apart classes: most candidates trail the best F by more than gamma, so
    # greedy computes no NMI for them. Its choices must still be the loops' best.
    import dmlnotes.losses.facility_location as module

    scored_rows = []
    margin_term = module._margin_term
    monkeypatch.setattr(
        module, "_margin_term", lambda rows, *args: scored_rows.append(len(rows)) or margin_term(rows, *args)
    )
    x, labels = random_batch(9, classes=6, per_class=4, spread=3.0)
    distances = our_distances(x)
    greedy = greedy_medoids(distances, labels, 6, gamma=1.0)
    assert min(scored_rows) < len(labels)
    assert_greedy_choices_maximise_the_objective(values(distances), labels.tolist(), greedy.tolist(), 1.0)


@pytest.mark.parametrize("gamma", [0.0, 1.0])
def test_equal_distances_and_duplicate_points_are_handled_as_the_loops_do(gamma):
    # Integer points on a line, several at the same place: distances tie exactly everywhere.
    # A duplicate of a medoid stays in its own cluster when it becomes a medoid itself.
    points = torch.tensor([0, 0, 1, 3, 3, 3, 4, 7, 7, 8, 10, 10], dtype=torch.float64)
    labels = torch.tensor([0, 1, 0, 1, 1, 2, 2, 0, 2, 2, 1, 0])
    distances = (points[:, None] - points[None, :]).abs()
    plain, classes = values(distances), labels.tolist()
    assert nearest_medoid(distances, torch.tensor([3, 4, 0])).tolist() == loop_assignment(plain, [3, 4, 0])
    assert nearest_medoid(distances, torch.tensor([3, 4, 0])).tolist()[3:6] == [0, 1, 0]
    greedy = greedy_medoids(distances, labels, 3, gamma)
    assert_greedy_choices_maximise_the_objective(plain, classes, greedy.tolist(), gamma)
    for start in (greedy.tolist(), [3, 4, 0], [0, 1, 10]):
        for passes in (1, 3):
            refined = refine_medoids(distances, labels, torch.tensor(start), gamma, passes=passes)
            assert refined.tolist() == loop_refine(plain, classes, start, gamma, passes=passes)


def tiny_problems():
    """(distances, labels) on 7 to 9 points with 2 or 3 classes, 36 seeds."""
    for seed in range(36):
        classes = 2 + seed % 2
        per_class = 3 if classes == 3 else 3 + seed % 3 // 2 + (seed % 5 == 0)
        x, labels = random_batch(100 + seed, classes=classes, per_class=per_class, spread=0.5)
        yield our_distances(x), labels


def test_greedy_keeps_the_submodular_share_of_the_facility_location_optimum():
    # gamma = 0: the objective is F. With the per-sample offset sum_i max_j D_ij,
    # f(S) = F(S) + sum_i max_j D_ij = sum_i max_{j in S} (max_j' D_ij' - D_ij) is a facility
    # location with non-negative weights: monotone, submodular and 0 on the empty set, so
    # greedy's f is at least (1 - 1/e) f(best set of K) (Nemhauser, Wolsey, Fisher 1978).
    # The bound must hold on every problem; how often greedy is exactly optimal is counted.
    exact = 0
    problems = list(tiny_problems())
    for distances, labels in problems:
        plain = values(distances)
        offset = sum(max(row) for row in plain)
        best, _ = exhaustive_best(plain, labels.tolist(), gamma=0.0)
        greedy = greedy_medoids(distances, labels, len(set(labels.tolist())), gamma=0.0)
        found = loop_facility_location(plain, greedy.tolist())
        assert found <= best + 1e-12
        assert found + offset >= (1 - 1 / math.e) * (best + offset) - 1e-12
        exact += found >= best - 1e-12
    assert exact >= len(problems) // 3, f"greedy found the optimum of F on only {exact} of {len(problems)} problems"


@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0])
def test_augmented_inference_against_exhaustive_search(gamma):
    # gamma > 0: the NMI term is not submodular, so greedy carries no guarantee. What must
    # hold: no search beats the exhaustive optimum, refinement never lowers the objective.
    # What is counted: how often greedy alone, and greedy plus refinement, reach the optimum;
    # the loss's default (greedy + refinement) must reach it on at least two problems in three.
    problems = list(tiny_problems())
    greedy_exact = refined_exact = 0
    for distances, labels in problems:
        plain, classes = values(distances), labels.tolist()
        best, _ = exhaustive_best(plain, classes, gamma)
        greedy = greedy_medoids(distances, labels, len(set(classes)), gamma)
        refined = refine_medoids(distances, labels, greedy, gamma, passes=5)
        greedy_score = augmented(plain, classes, greedy.tolist(), gamma)
        refined_score = augmented(plain, classes, refined.tolist(), gamma)
        assert greedy_score <= refined_score + 1e-12 and refined_score <= best + 1e-12
        greedy_exact += greedy_score >= best - 1e-12
        refined_exact += refined_score >= best - 1e-12
    assert refined_exact >= greedy_exact
    assert refined_exact >= 2 * len(problems) / 3, (
        f"greedy reached the optimum on {greedy_exact}, greedy + refinement on {refined_exact} of {len(problems)}"
    )


# What the loss says about a batch --------------------------------------------------------------------
def blobs(centres, labels, seed=0, noise=0.01):
    generator = torch.Generator().manual_seed(seed)
    centres = torch.tensor(centres, dtype=torch.float64)
    return centres + noise * torch.randn(len(centres), centres.shape[1], generator=generator, dtype=torch.float64)


def test_zero_when_classes_are_tight_and_far_apart_and_positive_when_the_margin_asks_more():
    # Three classes in tight clusters around orthogonal directions: any clustering that
    # mixes classes loses about sqrt 2 per moved sample, more than gamma = 1 buys back.
    e = torch.eye(3, dtype=torch.float64).tolist()
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 1, 2, 2, 2])
    x = blobs([e[int(k)] for k in labels], labels)
    loss_fn = FacilityLocationLoss(gamma=1.0)
    assert float(loss_fn(x, labels)) == 0.0
    assert loss_fn.last_medoids.nmi == 1.0 and loss_fn.last_stats.num_active == 0
    assert sorted(loss_fn.last_medoids.chosen.tolist()) == sorted(loss_fn.last_medoids.ground_truth.tolist())
    # A margin of 100 is worth more than the whole batch's distances: a mixed clustering wins.
    demanding = FacilityLocationLoss(gamma=100.0)
    assert float(demanding(x, labels)) > 0 and demanding.last_medoids.nmi < 1.0


def test_positive_when_a_class_is_split():
    # Class 0: two points at e1 and two inside class 1's cluster at e2. Its medoid leaves two
    # members sqrt 2 away: F~ = -2 sqrt 2. Medoids at e1 and e2 cost nothing (F = 0) and
    # cluster {0, 1} | {2, 3, 4, 5, 6}: loss = 2 sqrt 2 + gamma (1 - NMI), up to the noise.
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1])
    x = blobs([[1, 0], [1, 0], [0, 1], [0, 1], [0, 1], [0, 1], [0, 1]], labels, noise=1e-4)
    loss_fn = FacilityLocationLoss(gamma=1.0)
    loss = float(loss_fn(x, labels))
    expected = 2 * math.sqrt(2) + 1.0 - nmi(labels.tolist(), [0, 0, 1, 1, 1, 1, 1])
    assert loss == pytest.approx(expected, abs=1e-2)
    assert loss_fn.last_stats.num_active == 1


def test_medoids_of_a_single_class_and_of_singletons():
    x, _ = random_batch(5, classes=1, per_class=5)
    one_class = torch.zeros(5, dtype=torch.long)
    found = FacilityLocationLoss().medoids(x, one_class)
    assert found.nmi == 1.0 and len(found.chosen) == 1 and found.chosen.tolist() == found.ground_truth.tolist()
    assert found.loss == 0.0
    singletons = FacilityLocationLoss().medoids(x, torch.arange(5))
    assert sorted(singletons.chosen.tolist()) == list(range(5)) and singletons.nmi == 1.0 and singletons.loss == 0.0


@pytest.mark.parametrize(
    "labels",
    [torch.zeros(6, dtype=torch.long), torch.arange(6), torch.tensor([3])],
    ids=["one class", "one sample per class", "one sample"],
)
def test_a_batch_with_nothing_to_learn_from_gives_an_attached_zero(labels):
    x = torch.randn(len(labels), 4, dtype=torch.float64, requires_grad=True)
    check_empty_batch(FacilityLocationLoss(warn_if_empty=True), FacilityLocationLoss(), x, labels, match="clustering")


def test_the_search_never_lowers_the_objective_and_refinement_can_be_switched_off():
    x, labels = random_batch(7, classes=5, per_class=5, dim=4, spread=0.5)
    greedy_only = FacilityLocationLoss(refine_steps=0).medoids(x, labels)
    refined = FacilityLocationLoss(refine_steps=5).medoids(x, labels)
    distances = our_distances(x)
    assert greedy_only.chosen.tolist() == greedy_medoids(distances, labels, 5, 1.0).tolist()
    assert refined.augmented_score >= greedy_only.augmented_score
    assert refined.oracle_score == greedy_only.oracle_score


def test_other_distances_and_bad_parameters():
    x, labels = random_batch(8, classes=3, per_class=3)
    squared = FacilityLocationLoss(distance=SquaredEuclideanDistance())
    assert torch.isfinite(squared(x, labels))
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="gamma"):
            FacilityLocationLoss(gamma=bad)
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="refine_steps"):
            FacilityLocationLoss(refine_steps=bad)
    with pytest.raises(ValueError, match="not a similarity"):
        FacilityLocationLoss(distance=CosineSimilarity())
    with pytest.raises(ValueError, match="at least one sample"):
        FacilityLocationLoss().medoids(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))
