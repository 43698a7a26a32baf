import math

import numpy as np
import pytest
import torch

from dmlnotes.metrics import map_at_r, nearest_neighbors, nmi, recall_at_k, retrieval_metrics, retrieval_recall_at_k


def brute_force_ranking(x, metric):
    """Each query's other samples, nearest first (stable order on ties by index)."""
    x = np.asarray(x, dtype=np.float64)
    if metric == "cosine":
        unit = x / np.linalg.norm(x, axis=1, keepdims=True)
        dissimilarity = -(unit @ unit.T)
    else:
        dissimilarity = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    rankings = []
    for q in range(len(x)):
        others = [j for j in range(len(x)) if j != q]
        rankings.append(sorted(others, key=lambda j: (dissimilarity[q, j], j)))
    return rankings


def brute_force_recall(x, y, k, metric):
    ranking = brute_force_ranking(x, metric)
    return np.mean([any(y[j] == y[q] for j in ranking[q][:k]) for q in range(len(y))])


def brute_force_map_at_r(x, y, metric):
    ranking = brute_force_ranking(x, metric)
    scores = []
    for q in range(len(y)):
        r = sum(1 for j in range(len(y)) if j != q and y[j] == y[q])
        hits, total = 0, 0.0
        for i, j in enumerate(ranking[q][:r], start=1):
            if y[j] == y[q]:
                hits += 1
                total += hits / i
        scores.append(total / r)
    return np.mean(scores)


def test_hand_computed_recall_and_map_on_a_line():
    # Class a at 0 and 1, class b at 1.4 and 5.
    # Query 0: nearest 1 (a) -> hit at 1.  Query 1: 1.4 (b), 0 (a) -> hit at 2.
    # Query 1.4: 1 (a), 0 (a), 5 (b) -> hit at 3.  Query 5: 1.4 (b) -> hit at 1.
    x = torch.tensor([[0.0], [1.0], [1.4], [5.0]])
    y = torch.tensor([0, 0, 1, 1])
    assert recall_at_k(x, y, ks=(1, 2, 3)) == pytest.approx({1: 0.5, 2: 0.75, 3: 1.0})
    # R = 1 for every query: MAP@R is the share of queries whose first neighbour matches.
    assert map_at_r(x, y) == pytest.approx(0.5)


def test_hand_computed_map_at_r_with_r_two():
    # Class a at 0, 1, 3; class b at 2, 10, 11.  Query 0: 1 (a), 2 (b): AP = (1/1) / 2 = 0.5.
    # Query 1: 0 (a), 2 (b): 0.5.  Query 3: 2 (b), 1 (a): (1/2) / 2 = 0.25.
    # Query 2: 1, 3 (a, a): 0.  Query 10: 11 (b), 3 (a): 0.5.  Query 11: 10 (b), 3 (a): 0.5.
    x = torch.tensor([[0.0], [1.0], [3.0], [2.0], [10.0], [11.0]])
    y = torch.tensor([0, 0, 0, 1, 1, 1])
    assert map_at_r(x, y) == pytest.approx((0.5 + 0.5 + 0.25 + 0 + 0.5 + 0.5) / 6)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_recall_and_map_match_brute_force(metric):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    y = rng.integers(0, 6, size=60)
    ours = recall_at_k(x.astype(np.float32), y, ks=(1, 2, 4, 8), metric=metric)
    for k in (1, 2, 4, 8):
        assert ours[k] == pytest.approx(brute_force_recall(x, y, k, metric))
    assert map_at_r(x, y, metric=metric) == pytest.approx(brute_force_map_at_r(x, y, metric))


def test_chunked_equals_unchunked():
    torch.manual_seed(1)
    x, y = torch.randn(203, 16), torch.randint(0, 9, (203,))
    assert recall_at_k(x, y, chunk_size=1000) == recall_at_k(x, y, chunk_size=17)
    assert map_at_r(x, y, chunk_size=1000) == pytest.approx(map_at_r(x, y, chunk_size=5), abs=1e-7)
    assert torch.equal(nearest_neighbors(x, 5, chunk_size=1000), nearest_neighbors(x, 5, chunk_size=3))


def test_query_is_excluded_from_its_own_gallery():
    # Every point is alone in space: with the query included, R@1 would be 1.
    x = torch.tensor([[0.0], [10.0], [20.0], [30.0]])
    y = torch.tensor([0, 1, 0, 1])
    assert recall_at_k(x, y, ks=1)[1] == 0.0
    assert 0 not in nearest_neighbors(x, 3)[0].tolist()


def test_ir_recall_differs_from_dml_recall():
    # Query 0 of class a (0, 1, 2, 3): its nearest neighbour matches, so DML R@1 counts a hit,
    # but it found 1 of 3 relevant samples, so IR recall@1 is 1/3.
    x = torch.tensor([[0.0], [1.0], [2.0], [3.0], [100.0], [101.0]])
    y = torch.tensor([0, 0, 0, 0, 1, 1])
    assert recall_at_k(x, y, ks=1)[1] == 1.0
    assert retrieval_recall_at_k(x, y, k=1) == pytest.approx((4 * (1 / 3) + 2 * 1.0) / 6)


def test_nmi_is_one_for_perfect_clusters_and_hand_computed_when_two_classes_merge():
    y = torch.arange(4).repeat_interleave(5)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    assert nmi(centres[y] + 0.01 * torch.randn(20, 2), y) == pytest.approx(1.0)
    # Classes 0 and 1 share a location; 3 clusters: {0,1}, {2}, {3}.
    # H(Y) = ln 4, H(C) = MI = 1.5 ln 2, geometric NMI = 1.5 ln2 / sqrt(2 ln2 * 1.5 ln2) = sqrt(3) / 2.
    merged = centres[torch.tensor([0, 0, 2, 3])][y]
    assert nmi(merged, y, num_clusters=3) == pytest.approx(math.sqrt(3) / 2, abs=1e-9)
    # scikit-learn's arithmetic normalisation gives 1.5 ln2 / ((2 + 1.5) ln2 / 2) = 6/7.
    assert nmi(merged, y, num_clusters=3, average_method="arithmetic") == pytest.approx(6 / 7, abs=1e-9)


def test_retrieval_metrics_collects_everything():
    torch.manual_seed(0)
    y = torch.arange(5).repeat_interleave(4)
    result = retrieval_metrics(torch.randn(20, 4), y, ks=(1, 4))
    assert set(result) == {"R@1", "R@4", "MAP@R", "NMI"}
    assert all(0.0 <= v <= 1.0 for v in result.values())


@pytest.mark.parametrize(
    "embeddings, labels, message",
    [
        (torch.zeros(4), torch.zeros(4, dtype=torch.long), "shape \\(n, dim\\)"),
        (torch.zeros(4, 2), torch.zeros(3, dtype=torch.long), "disagree on the number of samples"),
        (torch.zeros(4, 2), torch.tensor([0.0, 0.0, 1.0, 1.0]), "integer class ids"),
        (torch.zeros(4, 2, dtype=torch.long), torch.tensor([0, 0, 1, 1]), "floating-point"),
        (torch.full((4, 2), float("nan")), torch.tensor([0, 0, 1, 1]), "NaN"),
        (torch.zeros(3, 2), torch.tensor([0, 0, 1]), "single sample have no match"),
    ],
)
def test_bad_input_raises_a_clear_error(embeddings, labels, message):
    with pytest.raises(ValueError, match=message):
        recall_at_k(embeddings, labels)


def test_bad_k_and_metric():
    x, y = torch.randn(6, 2), torch.tensor([0, 0, 1, 1, 2, 2])
    with pytest.raises(ValueError, match="k must lie between"):
        recall_at_k(x, y, ks=(1, 6))
    with pytest.raises(ValueError, match="metric must be one of"):
        map_at_r(x, y, metric="manhattan")
    with pytest.raises(ValueError, match="single sample"):
        map_at_r(x[:5], y[:5])


def test_equal_distances_are_ranked_by_index():
    # Integer points with many duplicates, 64 of them so that the centred coordinates are
    # multiples of 1/64: distances stay exact in float32 and tie everywhere.
    generator = torch.Generator().manual_seed(3)
    x = torch.randint(0, 3, (64, 2), generator=generator).float()
    expected = brute_force_ranking(x.numpy(), "euclidean")
    for k in (1, 4, 11, 63):
        for chunk_size in (7, 1024):
            found = nearest_neighbors(x, k, chunk_size=chunk_size, backend="torch")
            assert found.tolist() == [ranking[:k] for ranking in expected]


def test_one_search_serves_every_retrieval_metric():
    torch.manual_seed(1)
    x, y = torch.randn(90, 5), torch.arange(9).repeat_interleave(10)
    together = retrieval_metrics(x, y, ks=(1, 2, 4, 8), with_nmi=False)
    apart = {f"R@{k}": v for k, v in recall_at_k(x, y, ks=(1, 2, 4, 8)).items()}
    apart["MAP@R"] = map_at_r(x, y)
    assert together == apart


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_faiss_backend_gives_the_same_neighbours(metric):
    pytest.importorskip("faiss")
    torch.manual_seed(2)
    x, y = torch.randn(500, 16) + 5.0, torch.arange(25).repeat_interleave(20)
    assert torch.equal(
        nearest_neighbors(x, 7, metric, backend="faiss"), nearest_neighbors(x, 7, metric, backend="torch")
    )
    by_faiss = retrieval_metrics(x, y, metric=metric, with_nmi=False, backend="faiss")
    assert by_faiss == pytest.approx(retrieval_metrics(x, y, metric=metric, with_nmi=False, backend="torch"), abs=1e-12)


def test_faiss_backend_never_returns_the_query_itself():
    pytest.importorskip("faiss")
    x = torch.zeros(6, 3)  # every point a duplicate of every other
    found = nearest_neighbors(x, 5, backend="faiss")
    assert all(q not in row for q, row in enumerate(found.tolist()))
    assert all(sorted(row) == sorted(set(range(6)) - {q}) for q, row in enumerate(found.tolist()))


def test_missing_faiss_is_named(monkeypatch):
    import dmlnotes.metrics as metrics

    monkeypatch.setattr(metrics, "faiss_available", lambda: False)
    x = torch.randn(30, 2)
    with pytest.raises(ImportError, match="pip install faiss-cpu"):
        nearest_neighbors(x, 2, backend="faiss")
    assert metrics._resolve_backend("auto", 10**6) == "torch"
    with pytest.raises(ValueError, match="backend must be one of"):
        nearest_neighbors(x, 2, backend="annoy")


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_recall_at_1_and_map_at_r_agree_with_pytorch_metric_learning(metric):
    from pytorch_metric_learning.distances import CosineSimilarity, LpDistance
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
    from pytorch_metric_learning.utils.inference import CustomKNN

    torch.manual_seed(4)
    x, y = torch.randn(400, 8), torch.randint(0, 12, (400,))
    distance = CosineSimilarity() if metric == "cosine" else LpDistance(normalize_embeddings=False)
    calculator = AccuracyCalculator(
        include=("precision_at_1", "mean_average_precision_at_r"),
        knn_func=CustomKNN(distance),
        device=torch.device("cpu"),
    )
    theirs = calculator.get_accuracy(x, y)  # the query set is the reference set: each query left out of its own
    ours = retrieval_metrics(x, y, ks=(1,), metric=metric, with_nmi=False)
    assert ours["R@1"] == pytest.approx(theirs["precision_at_1"], abs=1e-9)
    assert ours["MAP@R"] == pytest.approx(theirs["mean_average_precision_at_r"], abs=1e-6)


def test_normalized_mutual_information_agrees_with_scikit_learn():
    from sklearn.metrics import normalized_mutual_info_score

    from dmlnotes.metrics import AVERAGE_METHODS, normalized_mutual_information

    rng = np.random.default_rng(5)
    for size, classes, clusters in [(50, 3, 4), (400, 10, 10), (7, 1, 3), (20, 20, 2)]:
        a, b = rng.integers(0, classes, size), rng.integers(0, clusters, size)
        for method in AVERAGE_METHODS:
            expected = normalized_mutual_info_score(a, b, average_method=method)
            assert normalized_mutual_information(a, b, method) == pytest.approx(expected, abs=1e-12)
    assert normalized_mutual_information([4, 4, 4], [0, 0, 0]) == 1.0
    with pytest.raises(ValueError, match="same length"):
        normalized_mutual_information([0, 1], [0, 1, 2])


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda x, y: recall_at_k(x, y, ks=1, chunk_size=2.5), "chunk_size must be an integer"),
        (lambda x, y: nmi(x, y, num_clusters=2.5), "num_clusters must be an integer"),
        (lambda x, y: recall_at_k(x, y, ks=(1, True)), "each k in ks must be an integer"),
        (lambda x, y: recall_at_k(x, y, ks=()), "at least one positive integer"),
        (lambda x, y: nmi(x, y, average_method="harmonic"), "average_method must be one of"),
    ],
)
def test_bad_parameters_are_named(call, message):
    x, y = torch.randn(6, 2), torch.tensor([0, 0, 1, 1, 2, 2])
    with pytest.raises(ValueError, match=message):
        call(x, y)


def test_batched_nmi_scores_every_row_as_scikit_learn_does():
    from sklearn.metrics import normalized_mutual_info_score

    from dmlnotes.metrics import AVERAGE_METHODS, batched_normalized_mutual_information

    generator = torch.Generator().manual_seed(6)
    labels = torch.randint(0, 5, (40,), generator=generator)
    rows = [
        torch.randint(0, 7, (40,), generator=generator),
        torch.randint(0, 2, (40,), generator=generator) * 9,  # ids with a gap: empty clusters count for nothing
        torch.zeros(40, dtype=torch.long),  # unsplit: NMI 0 against a split labelling
        (labels * 3 + 1) % 5,  # the classes under other names: exactly 1
        torch.arange(40),  # every sample alone
    ]
    clusterings = torch.stack(rows)
    for method in AVERAGE_METHODS:
        found = batched_normalized_mutual_information(clusterings, labels, method)
        expected = [normalized_mutual_info_score(labels, row, average_method=method) for row in rows]
        assert found.tolist() == pytest.approx(expected, abs=1e-12)
        assert found[2] == 0.0 and found[3] == 1.0
    one_class = torch.zeros(6, dtype=torch.long)
    both_unsplit = batched_normalized_mutual_information(torch.full((2, 6), 3), one_class)
    assert both_unsplit.tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="non-negative"):
        batched_normalized_mutual_information(torch.tensor([[0, -1]]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"shape \(B, n\)"):
        batched_normalized_mutual_information(torch.tensor([0, 1]), torch.tensor([0, 1]))
