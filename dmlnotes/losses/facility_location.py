"""Facility-location (clustering) loss (Song, Jegelka, Rathod, Murphy 2017; survey section 1.7, eqs. (8)-(11)).

Pair and triplet losses see a batch a few points at a time. The clustering loss scores
the whole batch as a clustering: a set ``S`` of medoids (cluster centres chosen among the
samples) earns the facility-location score

    F(X, S) = - sum_i min_{j in S} ||f(x_i) - f(x_j)||                                   (8)

and the ground truth earns the score of each class's best single medoid, computed on the
class's own members,

    F~(X, y*) = sum_k max_{j: y*[j] = k} F(X_{y* = k}, {j}).                              (9)

The loss asks the ground truth to beat every other clustering by a structured margin:

    l(X, y*) = [ max_S { F(X, S) + gamma * Delta(y(S), y*) } - F~(X, y*) ]_+             (10)

with ``|S|`` the number of classes in the batch, ``y(S)[i]`` the index of sample i's
nearest medoid and ``Delta = 1 - NMI`` (geometric normalisation),                          (11)

so a clustering that disagrees with the classes (small NMI) must score at least
``gamma * (1 - NMI)`` below the ground truth. The survey writes eq. (9) with a leading
minus sign; as ``F <= 0``, that ``F~`` would be the classes' total spread and the loss
would fall as classes spread out. We follow the paper, where ``F~`` is the plain sum (the
best clustering that the labels allow).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..checks import check_embeddings_and_labels, check_non_negative, check_non_negative_int
from ..distances import Distance, EuclideanDistance, check_distance
from ..metrics import batched_normalized_mutual_information
from .base import LossTerms, MetricLoss


def facility_location(distances: Tensor, medoids: Tensor) -> Tensor:
    """Eq. (8): ``F(X, S) = -sum_i min_{j in S} D_ij`` for distances ``(n, n)`` and medoid indices ``S`` (non-empty)."""
    return -distances[medoids].min(dim=0).values.sum()


def nearest_medoid(distances: Tensor, medoids: Tensor) -> Tensor:
    """Eq. (11)'s ``y(S)``: for each sample the position in ``medoids`` of its nearest medoid, shape ``(n,)``.

    Equal distances go to the earlier medoid, and a medoid always belongs to its own
    cluster (a duplicate of an earlier medoid would otherwise leave its cluster empty)."""
    assignment = distances[medoids].argmin(dim=0)
    assignment[medoids] = torch.arange(len(medoids), device=medoids.device)
    return assignment


def oracle_medoids(distances: Tensor, classes_of: Tensor, num_classes: int) -> Tensor:
    """Each class's medoid, shape ``(num_classes,)``: the member with the smallest sum of
    distances to its class (the maximiser of eq. (9)); equal sums go to the smaller index.

    ``classes_of`` holds class ids ``0 .. num_classes - 1``."""
    same_class = classes_of.unsqueeze(0) == classes_of.unsqueeze(1)
    to_own_class = distances.masked_fill(~same_class, 0.0).sum(dim=0)
    membership = F.one_hot(classes_of, num_classes).T.bool()  # (classes, n)
    return to_own_class.unsqueeze(0).masked_fill(~membership, float("inf")).argmin(dim=1)


def oracle_score(distances: Tensor, classes_of: Tensor, num_classes: int) -> Tensor:
    """Eq. (9): ``F~ = sum_k max_{j in class k} F(X_k, {j}) = -sum_i D_{i, medoid of y_i}``."""
    medoids = oracle_medoids(distances.detach(), classes_of, num_classes)
    return -distances[torch.arange(len(classes_of), device=classes_of.device), medoids[classes_of]].sum()


def _margin_term(assignments: Tensor, classes_of: Tensor, gamma: float, dtype: torch.dtype) -> Tensor:
    """``gamma * (1 - NMI)`` of each row of ``assignments`` against the classes."""
    return gamma * (1.0 - batched_normalized_mutual_information(assignments, classes_of).to(dtype))


def greedy_medoids(distances: Tensor, classes_of: Tensor, num_medoids: int, gamma: float) -> Tensor:
    """Loss-augmented greedy inference: ``num_medoids`` indices, in the order they were chosen.

    From an empty set, each step adds the sample ``j`` that maximises
    ``F(S + {j}) + gamma * (1 - NMI(y(S + {j}), y*))``; all candidates are scored at once
    (their nearest-medoid distances and assignments as ``(n, n)`` matrices, their NMIs in
    one batch; only for the candidates whose ``F`` lies within ``gamma`` of the best, as
    the others cannot win). Equal scores go to the smaller index. Without gradient.
    """
    n = distances.shape[0]
    rows = torch.arange(n, device=distances.device)
    is_chosen = torch.zeros(n, dtype=torch.bool, device=distances.device)
    chosen: list[int] = []
    nearest = assignment = None
    for step in range(num_medoids):
        if nearest is None:  # the first medoid serves every sample
            candidate_nearest = distances
            candidate_assignment = torch.zeros(n, n, dtype=torch.long, device=distances.device)
        else:  # candidate c (a row) takes over the samples strictly closer to it than to their medoid
            closer = distances < nearest
            candidate_nearest = torch.where(closer, distances, nearest)
            candidate_assignment = torch.where(closer, step, assignment)
        candidate_assignment[rows, rows] = step
        score = (-candidate_nearest.sum(dim=1)).masked_fill(is_chosen, float("-inf"))
        if gamma > 0:
            # The margin adds at most gamma: only candidates within gamma of the best F can win
            # (the slack covers rounding), so only they need an NMI.
            best_f = score.max()
            slack = 16 * torch.finfo(score.dtype).eps * (best_f.abs() + gamma + 1)
            contenders = (score + gamma >= best_f - slack).nonzero().squeeze(1)
            margin = _margin_term(candidate_assignment[contenders], classes_of, gamma, score.dtype)
            score = torch.full_like(score, float("-inf")).index_copy_(0, contenders, score[contenders] + margin)
        best = int(score.argmax())
        chosen.append(best)
        is_chosen[best] = True
        nearest, assignment = candidate_nearest[best], candidate_assignment[best]
    return torch.tensor(chosen, dtype=torch.long, device=distances.device)


def _swap_scores(distances: Tensor, classes_of: Tensor, medoids: Tensor, first_cluster: int, gamma: float):
    """Every swap of a medoid of cluster ``first_cluster`` or later with a member of its cluster, scored at once.

    Returns the candidates (members of those clusters, the medoids among them: no swap),
    their clusters and ``F + gamma (1 - NMI)`` after each swap. Only the swapped cluster's
    medoid changes, so a sample's nearest medoid after the swap is the candidate or, of
    the other medoids, the nearest (its first or second nearest now): ``(swaps, n)`` work,
    with :func:`nearest_medoid`'s ties and medoids in their own clusters.
    """
    to_medoids = distances[medoids]  # (medoids, n)
    positions = torch.arange(len(medoids), device=medoids.device)
    first = nearest_medoid(distances, medoids)
    first_distance = to_medoids.gather(0, first.unsqueeze(0)).squeeze(0)
    others = to_medoids.scatter(0, first.unsqueeze(0), float("inf"))
    second = others.argmin(dim=0)
    second_distance = others.gather(0, second.unsqueeze(0)).squeeze(0)

    candidates = (first >= first_cluster).nonzero().squeeze(1)
    cluster = first[candidates].unsqueeze(1)  # (swaps, 1)
    loses_medoid = first.unsqueeze(0) == cluster  # the samples whose medoid is swapped out
    base_distance = torch.where(loses_medoid, second_distance, first_distance)
    base = torch.where(loses_medoid, second, first)
    to_candidate = distances[candidates]
    # Equal distances go to the earlier position, as in nearest_medoid.
    closer = (to_candidate < base_distance) | ((to_candidate == base_distance) & (cluster < base))
    score = -torch.where(closer, to_candidate, base_distance).sum(dim=1)
    if gamma > 0:
        assignment = torch.where(closer, cluster, base)
        swaps = torch.arange(len(candidates), device=candidates.device)
        swapped_out = medoids[cluster.squeeze(1)]
        natural = assignment[swaps, swapped_out]  # no longer a medoid: its nearest medoid
        assignment[:, medoids] = positions
        assignment[swaps, swapped_out] = natural
        assignment[swaps, candidates] = cluster.squeeze(1)
        score = score + _margin_term(assignment, classes_of, gamma, score.dtype)
    return candidates, cluster.squeeze(1), score


def refine_medoids(distances: Tensor, classes_of: Tensor, medoids: Tensor, gamma: float, passes: int) -> Tensor:
    """PAM-style local search on the augmented objective (the paper's refinement, its section 3.4).

    A pass visits the clusters in turn; for each, every member is tried in place of the
    medoid and the best swap is kept if it raises ``F(S) + gamma * (1 - NMI)``. Stops
    after ``passes`` passes or a pass without a swap, so the objective never decreases.
    The swaps of all clusters not yet visited are scored at once (:func:`_swap_scores`):
    the first cluster with a swap that raises the objective takes its best one, and the
    visit goes on after it, as one cluster at a time would. Without gradient.
    """
    medoids = medoids.clone()
    for _ in range(passes):
        swapped = False
        next_cluster = 0
        while next_cluster < len(medoids):
            candidates, cluster, score = _swap_scores(distances, classes_of, medoids, next_cluster, gamma)
            current = score[candidates == medoids[cluster]][0]  # every "no swap" scores the current set
            better = score > current
            if not bool(better.any()):
                break
            k = int(cluster[better].min())
            best = int(score.masked_fill(cluster != k, float("-inf")).argmax())
            medoids[k] = candidates[best]
            swapped = True
            next_cluster = k + 1
        if not swapped:
            break
    return medoids


@dataclass(frozen=True)
class FacilityLocationMedoids:
    """What the loss-augmented inference chose on a batch (all without gradient).

    Attributes:
        chosen: ``(K,)`` indices of the loss-augmented medoids ``S``, K = number of classes.
        assignment: ``(n,)`` each sample's cluster, a position in ``chosen`` (eq. (11)'s ``y``).
        ground_truth: ``(K,)`` each class's medoid (eq. (9)), classes in the order of ``classes``.
        classes: ``(K,)`` the class labels, sorted.
        nmi: ``NMI(y, y*)`` of the chosen clustering (geometric normalisation).
        augmented_score: ``F(X, S) + gamma * (1 - nmi)``, the maximised objective of eq. (10).
        oracle_score: ``F~(X, y*)`` of eq. (9).
    """

    chosen: Tensor
    assignment: Tensor
    ground_truth: Tensor
    classes: Tensor
    nmi: float
    augmented_score: float
    oracle_score: float

    @property
    def loss(self) -> float:
        """The hinge of eq. (10) at these medoids (as the search's precision computed it)."""
        return max(self.augmented_score - self.oracle_score, 0.0)


CLUSTERING = "clustering (two classes, one of them with two samples)"


class FacilityLocationLoss(MetricLoss):
    """Clustering loss of Song et al. (2017), survey eqs. (8)-(11): one structured hinge per batch.

    Conventions:
        * Distances: plain (not squared) Euclidean between L2-normalised embeddings, as the
          survey's eq. (8) and the paper (default ``EuclideanDistance(normalize_embeddings=True)``;
          the authors' TensorFlow ``cluster_loss`` expects normalised embeddings and takes
          plain distances). A similarity is refused: medoids are the *nearest* points.
        * ``F`` sums over the batch (eq. (8)), so the loss grows with the batch size and
          ``gamma`` is in units of summed distance.
        * ``|S| = K``, the number of classes in the batch; ``y(S)`` assigns each sample to
          its nearest medoid (equal distances: the earlier medoid; a medoid to itself).
          NMI with the geometric mean (eq. (11)) and scikit-learn's limits: two unsplit
          labellings score 1, zero mutual information 0
          (:func:`dmlnotes.metrics.batched_normalized_mutual_information`).

    Loss-augmented inference (the ``max_S`` of eq. (10), NP-hard) is the paper's greedy
    algorithm followed by its PAM-style refinement, both without gradient: start from an
    empty set, add K times the sample that maximises ``F(S + {j}) + gamma * Delta``
    (:func:`greedy_medoids`), then up to ``refine_steps`` passes that try every member of
    each cluster as its medoid and keep a swap that raises the objective
    (:func:`refine_medoids`). For ``gamma = 0`` the objective is ``F`` alone: shifted to
    ``f(S) = F(S) + sum_i max_j D_ij`` (for the empty set, each sample's "nearest medoid"
    taken as the sample farthest from it, so ``f(empty) = 0``) it is a non-negative, monotone, submodular set
    function, and greedy's ``f`` is at least ``1 - 1/e`` of the best ``f`` over sets of
    K (Nemhauser, Wolsey, Fisher 1978); the NMI term is not submodular, so for
    ``gamma > 0`` greedy is a heuristic. In half precision the search runs on float32
    distances, so that rounding does not choose the medoids.

    The loss is then recomputed with gradient from the chosen medoids and each class's
    medoid (:func:`oracle_medoids`, chosen without gradient), as
    ``[sum_i (D_{i, class medoid} - D_{i, chosen medoid}) + gamma * (1 - NMI)]_+``, which is
    ``F(S) + gamma * Delta - F~`` summed per sample, so low precision does not subtract two
    large sums. Its (sub)gradient moves each sample towards its class's medoid and away
    from its chosen medoid; the NMI term is constant in the embeddings.

    A batch with fewer than two classes, or with one sample per class, has nothing to
    learn from (the loss is zero for every embedding) and returns a graph-attached zero.
    There is one term per batch, so every ``reduction`` gives the same value;
    ``last_stats`` counts that term and whether it is positive, and ``last_medoids``
    holds the :class:`FacilityLocationMedoids` of the last batch (None for an empty one).
    pytorch-metric-learning has no facility-location loss to compare with.

    Args:
        gamma: the margin multiplier ``gamma >= 0`` of eq. (10). Default 1.0: our choice
            (neither the survey nor the authors' TensorFlow ``cluster_loss``, whose
            ``margin_multiplier`` has no default, fixes a value we could check).
        refine_steps: the most refinement passes after greedy (0: greedy only). Default
            5, as the authors' TensorFlow implementation (``pam_max_iter=5``); passes stop
            early once none swaps.
        distance: a ``dmlnotes.distances.Distance`` that is not a similarity (default
            ``EuclideanDistance(normalize_embeddings=True)``).
        warn_if_empty: warn when the batch has nothing to learn from.
        reduction: ``"mean"``, ``"mean_nonzero"`` or ``"sum"``: all equal (one term).

    Shapes:
        embeddings ``(n, dim)`` float, labels ``(n,)`` int -> scalar. Refuses a miner's
        ``indices_tuple``: the loss clusters the whole batch.
    """

    takes_indices_tuple = False
    compares_with = "the whole batch, clustered (the loss chooses its own medoids)"

    def __init__(
        self,
        gamma: float = 1.0,
        refine_steps: int = 5,
        distance: Distance | None = None,
        warn_if_empty: bool = False,
        reduction: str = "mean",
    ):
        super().__init__(warn_if_empty=warn_if_empty, reduction=reduction)
        self.gamma = check_non_negative("gamma", gamma)
        self.refine_steps = check_non_negative_int("refine_steps", refine_steps)
        self.distance = check_distance(distance, EuclideanDistance(normalize_embeddings=True))
        if self.distance.is_similarity:
            raise ValueError("FacilityLocationLoss needs a distance (medoids are the nearest points), not a similarity")
        self.last_medoids: FacilityLocationMedoids | None = None

    def medoids(self, embeddings: Tensor, labels: Tensor) -> FacilityLocationMedoids:
        """The loss-augmented medoids and the classes' medoids of a batch (at least one sample)."""
        labels = check_embeddings_and_labels(embeddings, labels)
        if labels.numel() == 0:
            raise ValueError("a batch of at least one sample is needed to choose medoids")
        with torch.no_grad():
            return self._search(embeddings, labels)

    def _search(self, embeddings: Tensor, labels: Tensor, distances: Tensor | None = None) -> FacilityLocationMedoids:
        classes, classes_of = torch.unique(labels, return_inverse=True)
        num_classes = len(classes)
        if distances is None or embeddings.dtype in (torch.float16, torch.bfloat16):
            precise = torch.float32 if embeddings.dtype in (torch.float16, torch.bfloat16) else embeddings.dtype
            distances = self.distance(embeddings.detach().to(precise))
        distances = distances.detach()
        chosen = greedy_medoids(distances, classes_of, num_classes, self.gamma)
        if self.refine_steps > 0:
            chosen = refine_medoids(distances, classes_of, chosen, self.gamma, self.refine_steps)
        assignment = nearest_medoid(distances, chosen)
        nmi = float(batched_normalized_mutual_information(assignment.unsqueeze(0), classes_of)[0])
        return FacilityLocationMedoids(
            chosen=chosen,
            assignment=assignment,
            ground_truth=oracle_medoids(distances, classes_of, num_classes),
            classes=classes,
            nmi=nmi,
            augmented_score=float(facility_location(distances, chosen)) + self.gamma * (1.0 - nmi),
            oracle_score=float(oracle_score(distances, classes_of, num_classes)),
        )

    def compute_loss(self, embeddings: Tensor, labels: Tensor, indices_tuple=None) -> LossTerms:
        self.last_medoids = None
        num_classes = int(torch.unique(labels).numel())
        if num_classes < 2 or num_classes == len(labels):
            return LossTerms.none(embeddings, CLUSTERING)
        distances = self.distance(embeddings)
        with torch.no_grad():
            found = self._search(embeddings, labels, distances)
        self.last_medoids = found
        classes_of = torch.searchsorted(found.classes, labels)
        rows = torch.arange(len(labels), device=labels.device)
        to_class_medoid = distances[rows, found.ground_truth[classes_of]]
        to_chosen_medoid = distances[rows, found.chosen[found.assignment]]
        hinge = F.relu((to_class_medoid - to_chosen_medoid).sum() + self.gamma * (1.0 - found.nmi))  # eq. (10)
        return LossTerms(hinge.reshape(1), what=CLUSTERING)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, refine_steps={self.refine_steps}, {super().extra_repr()}"
