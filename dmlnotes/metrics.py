"""Retrieval and clustering metrics of deep metric learning: Recall@K, MAP@R and NMI.

Every query is compared with all *other* samples (the query is excluded from its own
gallery), as in the DML literature. Distances are computed for a chunk of queries at a
time, so 20,000 x 20,000 distances never sit in memory at once.

What DML papers call Recall@K is a hit rate: the fraction of queries with at least one
sample of their class among their K nearest neighbours. It is not the recall of
information retrieval (the fraction of all relevant items retrieved), which
:func:`retrieval_recall_at_k` computes for comparison.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .checks import check_choice, check_embeddings
from .data.dataset import as_label_tensor

METRICS = ("euclidean", "cosine")


def _check_embeddings(embeddings, metric: str) -> Tensor:
    if isinstance(embeddings, np.ndarray):
        embeddings = torch.from_numpy(embeddings)
    check_embeddings(embeddings)
    if embeddings.shape[0] < 2:
        raise ValueError(f"retrieval needs at least 2 samples, got {embeddings.shape[0]}")
    if not torch.isfinite(embeddings).all():
        raise ValueError("embeddings contain NaN or infinite values")
    check_choice("metric", metric, METRICS)
    return embeddings.detach()


def _check(embeddings, labels, metric: str) -> tuple[Tensor, Tensor]:
    embeddings = _check_embeddings(embeddings, metric)
    labels = as_label_tensor(labels)
    if labels.shape[0] != embeddings.shape[0]:
        raise ValueError(
            f"embeddings and labels disagree on the number of samples: {embeddings.shape[0]} and {labels.shape[0]}"
        )
    return embeddings, labels.to(embeddings.device)


def _check_no_singletons(labels: Tensor) -> Tensor:
    """Samples per class, after checking that every query has at least one other sample of its class."""
    classes, counts = torch.unique(labels, return_counts=True)
    lonely = classes[counts < 2]
    if lonely.numel():
        shown = ", ".join(str(int(c)) for c in lonely[:5]) + (" ..." if lonely.numel() > 5 else "")
        raise ValueError(
            f"classes with a single sample have no match to retrieve: {shown}; every class needs at least 2 samples "
            "(drop those samples before evaluating)"
        )
    return counts[torch.searchsorted(classes, labels)]


def _query_chunks(n: int, chunk_size: int) -> Iterator[slice]:
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size}")
    for start in range(0, n, chunk_size):
        yield slice(start, min(start + chunk_size, n))


def nearest_neighbors(embeddings, k: int, metric: str = "euclidean", chunk_size: int = 1024) -> Tensor:
    """Indices ``(n, k)`` of each sample's k nearest other samples, nearest first."""
    embeddings = _check_embeddings(embeddings, metric)
    n = embeddings.shape[0]
    if not 1 <= k <= n - 1:
        raise ValueError(f"k must lie between 1 and n - 1 = {n - 1}, got {k}")
    gallery = F.normalize(embeddings, dim=1) if metric == "cosine" else embeddings
    gallery_sq = (gallery * gallery).sum(dim=1)
    result = []
    for rows in _query_chunks(n, chunk_size):
        queries = gallery[rows]
        if metric == "cosine":
            dissimilarity = -(queries @ gallery.T)
        else:
            dissimilarity = gallery_sq[rows, None] + gallery_sq[None, :] - 2.0 * queries @ gallery.T
        own = torch.arange(rows.start, rows.stop, device=gallery.device)
        dissimilarity[torch.arange(len(own), device=gallery.device), own] = float("inf")
        result.append(torch.topk(dissimilarity, k, dim=1, largest=False).indices)
    return torch.cat(result)


def recall_at_k(
    embeddings, labels, ks: int | Sequence[int] = (1, 2, 4, 8), metric: str = "euclidean", chunk_size: int = 1024
) -> dict[int, float]:
    """Recall@K as DML papers define it: the fraction of queries whose K nearest other
    samples include one of their class. Returns ``{k: recall}`` with values in [0, 1]."""
    embeddings, labels = _check(embeddings, labels, metric)
    _check_no_singletons(labels)
    ks = [ks] if isinstance(ks, int) else list(ks)
    if not ks or any(not isinstance(k, (int, np.integer)) or k < 1 for k in ks):
        raise ValueError(f"ks must be positive integers, got {ks}")
    neighbors = nearest_neighbors(embeddings, max(ks), metric, chunk_size)
    hits = labels[neighbors] == labels[:, None]
    first_hit = torch.where(hits.any(dim=1), hits.float().argmax(dim=1), torch.full_like(labels, max(ks)))
    return {int(k): float((first_hit < k).double().mean()) for k in ks}


def retrieval_recall_at_k(embeddings, labels, k: int, metric: str = "euclidean", chunk_size: int = 1024) -> float:
    """Information-retrieval recall: the share of each query's relevant samples (its class,
    itself excluded) found in its top K, averaged over queries. Not what DML papers report."""
    embeddings, labels = _check(embeddings, labels, metric)
    relevant = _check_no_singletons(labels) - 1
    neighbors = nearest_neighbors(embeddings, k, metric, chunk_size)
    found = (labels[neighbors] == labels[:, None]).sum(dim=1)
    return float((found.double() / relevant.double()).mean())


def map_at_r(embeddings, labels, metric: str = "euclidean", chunk_size: int = 1024) -> float:
    """MAP@R (Musgrave, Belongie, Lim 2020): for a query with R other samples of its class,
    the mean over i = 1..R of precision@i counted only where the i-th neighbour is relevant."""
    embeddings, labels = _check(embeddings, labels, metric)
    r = _check_no_singletons(labels) - 1
    neighbors = nearest_neighbors(embeddings, int(r.max()), metric, chunk_size)
    relevant = (labels[neighbors] == labels[:, None]).double()
    ranks = torch.arange(1, neighbors.shape[1] + 1, device=relevant.device, dtype=relevant.dtype)
    within_r = ranks[None, :] <= r[:, None]
    relevant = relevant * within_r
    precision_at_i = torch.cumsum(relevant, dim=1) / ranks
    average_precision = (precision_at_i * relevant).sum(dim=1) / r.to(relevant.dtype)
    return float(average_precision.mean())


def nmi(embeddings, labels, num_clusters: int | None = None, seed: int = 0, average_method: str = "geometric") -> float:
    """Normalised mutual information between k-means clusters and the labels.

    k-means (scikit-learn) with as many clusters as classes by default. The survey's
    eq. (11) normalises by ``sqrt(H(y1) H(y2))``, hence ``average_method="geometric"``
    (scikit-learn's own default is the arithmetic mean).
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import normalized_mutual_info_score

    embeddings, labels = _check(embeddings, labels, "euclidean")
    num_classes = int(torch.unique(labels).numel())
    k = num_classes if num_clusters is None else int(num_clusters)
    if not 1 <= k <= embeddings.shape[0]:
        raise ValueError(f"num_clusters must lie between 1 and the number of samples, got {k}")
    # One k-means++ start (scikit-learn's "auto" for this init): repeating starts costs time for a small change.
    clusters = KMeans(n_clusters=k, n_init=1, random_state=seed).fit_predict(embeddings.cpu().double().numpy())
    return float(normalized_mutual_info_score(labels.cpu().numpy(), clusters, average_method=average_method))


def retrieval_metrics(
    embeddings, labels, ks: Sequence[int] = (1, 2, 4, 8), metric: str = "euclidean", with_nmi: bool = True
) -> dict[str, float]:
    """Recall@K for each K, MAP@R and (optionally) NMI in one dictionary, keys like ``"R@1"``."""
    result = {f"R@{k}": value for k, value in recall_at_k(embeddings, labels, ks, metric).items()}
    result["MAP@R"] = map_at_r(embeddings, labels, metric)
    if with_nmi:
        result["NMI"] = nmi(embeddings, labels)
    return result
