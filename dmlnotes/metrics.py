"""Retrieval and clustering metrics of deep metric learning: Recall@K, MAP@R and NMI.

Every query is compared with all *other* samples (the query is excluded from its own
gallery), as in the DML literature. Distances come from :mod:`dmlnotes.distances`, for a
chunk of queries at a time, so 20,000 x 20,000 distances never sit in memory at once;
equal distances are ranked by index. With the optional faiss package installed, galleries
of 10,000 samples or more are searched by faiss instead (``backend=``).
:func:`retrieval_metrics` searches once for all its metrics.

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

from .checks import check_choice, check_embeddings, check_positive_int
from .data.dataset import as_label_tensor
from .distances import pairwise_cosine_similarity, pairwise_squared_euclidean

METRICS = ("euclidean", "cosine")
BACKENDS = ("auto", "torch", "faiss")
FAISS_FROM = 10_000  # "auto" uses faiss from this many samples on: lesson-sized sets stay on torch


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
    for start in range(0, n, chunk_size):
        yield slice(start, min(start + chunk_size, n))


def faiss_available() -> bool:
    """Whether the optional faiss package (``pip install faiss-cpu`` or a GPU build) imports."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def _resolve_backend(backend: str, n: int) -> str:
    check_choice("backend", backend, BACKENDS)
    if backend == "auto":
        return "faiss" if n >= FAISS_FROM and faiss_available() else "torch"
    if backend == "faiss" and not faiss_available():
        raise ImportError("backend='faiss' needs the faiss package: pip install faiss-cpu (or a GPU build)")
    return backend


def _first_k_in_index_order(dissimilarity: Tensor, k: int) -> Tensor:
    """Column indices of each row's k smallest values, by value and then by index."""
    # topk picks among equal values arbitrarily; k + 1 values show which rows tie across the cut.
    values, indices = torch.topk(dissimilarity, k + 1, dim=1, largest=False)
    tied = (values[:, k - 1] == values[:, k]).nonzero().squeeze(1)
    values, indices = values[:, :k], indices[:, :k]
    if tied.numel():  # rare (duplicate points): take the cut's ties by index
        rows = dissimilarity[tied]
        cut = values[tied, k - 1 : k]
        closer = rows < cut
        at_cut = rows == cut
        room = k - closer.sum(dim=1, keepdim=True)
        chosen = closer | (at_cut & (at_cut.cumsum(dim=1) <= room))
        indices[tied] = chosen.nonzero()[:, 1].view(-1, k)  # nonzero() lists each row in index order
        values[tied] = rows.gather(1, indices[tied])
    by_index = indices.argsort(dim=1)
    indices, values = indices.gather(1, by_index), values.gather(1, by_index)
    return indices.gather(1, values.argsort(dim=1, stable=True))


def _torch_neighbors(embeddings: Tensor, k: int, metric: str, chunk_size: int) -> Tensor:
    n = embeddings.shape[0]
    center = embeddings.mean(dim=0, keepdim=True)  # one center for all chunks: the same rounding in each
    result = []
    for rows in _query_chunks(n, chunk_size):
        if metric == "cosine":
            dissimilarity = -pairwise_cosine_similarity(embeddings[rows], embeddings)
        else:
            dissimilarity = pairwise_squared_euclidean(embeddings[rows], embeddings, center=center)
        own = torch.arange(rows.start, rows.stop, device=embeddings.device)
        dissimilarity[own - rows.start, own] = float("inf")
        result.append(_first_k_in_index_order(dissimilarity, k))
    return torch.cat(result)


def _faiss_neighbors(embeddings: Tensor, k: int, metric: str) -> Tensor:
    import faiss

    points = embeddings.detach().to("cpu", torch.float32)
    if metric == "cosine":
        points = F.normalize(points, dim=1)
        index = faiss.IndexFlatIP(points.shape[1])
    else:
        points = points - points.mean(dim=0, keepdim=True)  # as the torch path: exact shift, fewer lost digits
        index = faiss.IndexFlatL2(points.shape[1])
    if embeddings.is_cuda and hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0:
        index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), embeddings.device.index or 0, index)
    points = np.ascontiguousarray(points.numpy())
    index.add(points)
    _, found = index.search(points, k + 1)
    found = torch.from_numpy(found)
    # Drop the query itself; where a duplicate pushed it out of the list, drop the last one.
    own = found == torch.arange(len(found))[:, None]
    own[~own.any(dim=1), -1] = True
    return found[~own].view(-1, k).to(embeddings.device)


def _neighbors(embeddings: Tensor, k: int, metric: str, chunk_size: int, backend: str) -> Tensor:
    n = embeddings.shape[0]
    if not 1 <= k <= n - 1:
        raise ValueError(f"k must lie between 1 and n - 1 = {n - 1}, got {k}")
    check_positive_int("chunk_size", chunk_size)
    if _resolve_backend(backend, n) == "faiss":
        return _faiss_neighbors(embeddings, k, metric)
    return _torch_neighbors(embeddings, k, metric, chunk_size)


def nearest_neighbors(
    embeddings, k: int, metric: str = "euclidean", chunk_size: int = 1024, backend: str = "auto"
) -> Tensor:
    """Indices ``(n, k)`` of each sample's k nearest other samples, nearest first.

    Equal distances are ranked by index with the torch backend. ``backend="faiss"`` uses a
    faiss flat (exact) index, on the GPU when the embeddings are there and faiss has GPU
    support; ``"auto"`` uses it from 10,000 samples on when faiss is installed.
    """
    embeddings = _check_embeddings(embeddings, metric)
    return _neighbors(embeddings, check_positive_int("k", k), metric, chunk_size, backend)


def _check_ks(ks) -> list[int]:
    ks = [ks] if isinstance(ks, (int, np.integer)) else list(ks)
    if not ks:
        raise ValueError("ks must hold at least one positive integer, got none")
    return [check_positive_int("each k in ks", k) for k in ks]


def _recall_from_hits(hits: Tensor, ks: list[int]) -> dict[int, float]:
    """Recall@K for each K from the ``(n, >= max(ks))`` relevance of the ranked neighbours."""
    seen = hits[:, : max(ks)].cumsum(dim=1) > 0
    return {k: float(seen[:, k - 1].double().mean()) for k in ks}


def _map_at_r_from_hits(hits: Tensor, r: Tensor) -> float:
    """MAP@R from the relevance of the ranked neighbours (at least ``max(r)`` columns)."""
    relevant = hits[:, : int(r.max())].double()
    ranks = torch.arange(1, relevant.shape[1] + 1, device=relevant.device, dtype=relevant.dtype)
    relevant = relevant * (ranks[None, :] <= r[:, None])
    precision_at_i = torch.cumsum(relevant, dim=1) / ranks
    return float(((precision_at_i * relevant).sum(dim=1) / r.to(relevant.dtype)).mean())


def recall_at_k(
    embeddings,
    labels,
    ks: int | Sequence[int] = (1, 2, 4, 8),
    metric: str = "euclidean",
    chunk_size: int = 1024,
    backend: str = "auto",
) -> dict[int, float]:
    """Recall@K as DML papers define it: the fraction of queries whose K nearest other
    samples include one of their class. Returns ``{k: recall}`` with values in [0, 1]."""
    embeddings, labels = _check(embeddings, labels, metric)
    _check_no_singletons(labels)
    ks = _check_ks(ks)
    neighbors = _neighbors(embeddings, max(ks), metric, chunk_size, backend)
    return _recall_from_hits(labels[neighbors] == labels[:, None], ks)


def retrieval_recall_at_k(
    embeddings, labels, k: int, metric: str = "euclidean", chunk_size: int = 1024, backend: str = "auto"
) -> float:
    """Information-retrieval recall: the share of each query's relevant samples (its class,
    itself excluded) found in its top K, averaged over queries. Not what DML papers report."""
    embeddings, labels = _check(embeddings, labels, metric)
    relevant = _check_no_singletons(labels) - 1
    neighbors = _neighbors(embeddings, check_positive_int("k", k), metric, chunk_size, backend)
    found = (labels[neighbors] == labels[:, None]).sum(dim=1)
    return float((found.double() / relevant.double()).mean())


def map_at_r(embeddings, labels, metric: str = "euclidean", chunk_size: int = 1024, backend: str = "auto") -> float:
    """MAP@R (Musgrave, Belongie, Lim 2020): for a query with R other samples of its class,
    the mean over i = 1..R of precision@i counted only where the i-th neighbour is relevant."""
    embeddings, labels = _check(embeddings, labels, metric)
    r = _check_no_singletons(labels) - 1
    neighbors = _neighbors(embeddings, int(r.max()), metric, chunk_size, backend)
    return _map_at_r_from_hits(labels[neighbors] == labels[:, None], r)


AVERAGE_METHODS = ("min", "geometric", "arithmetic", "max")


def normalized_mutual_information(labels_a, labels_b, average_method: str = "geometric") -> float:
    """Normalised mutual information of two labellings of the same samples, in [0, 1].

    ``I(a; b) / mean(H(a), H(b))``, entropies in nats; the survey's eq. (11) takes the
    geometric mean ``sqrt(H(a) H(b))``. Two labellings that do not split the data at all
    score 1 and otherwise zero mutual information scores 0 (scikit-learn's conventions).
    Computed by :func:`batched_normalized_mutual_information`.
    """
    check_choice("average_method", average_method, AVERAGE_METHODS)
    a, b = (np.asarray(labels.cpu() if isinstance(labels, Tensor) else labels) for labels in (labels_a, labels_b))
    if a.ndim != 1 or b.ndim != 1 or len(a) != len(b) or len(a) == 0:
        raise ValueError(
            f"two non-empty 1-D labellings of the same length expected, got shapes {a.shape} and {b.shape}"
        )
    a, b = (torch.from_numpy(np.unique(labels, return_inverse=True)[1].reshape(-1)) for labels in (a, b))
    return float(batched_normalized_mutual_information(a.unsqueeze(0), b, average_method)[0])


def batched_normalized_mutual_information(
    clusterings: Tensor, labels: Tensor, average_method: str = "geometric"
) -> Tensor:
    """NMI of each row of ``clusterings`` ``(B, n)`` against one labelling ``labels`` ``(n,)``: a ``(B,)`` tensor.

    Ids are non-negative integers (an unused id is an empty cluster). The same value and
    conventions as :func:`normalized_mutual_information`, for many clusterings at once
    (the facility-location loss scores every candidate medoid this way): one count of
    the joint ``(clustering, label)`` cells for all rows, then the entropies as means over
    the samples, ``H(a) = -1/n sum_i log(n_{a_i} / n)`` and ``H(a, b)`` alike, and
    ``I(a; b) = H(b) - (H(a, b) - H(a))``: exactly 1 for the same partition under other
    names, exactly 0 when one labelling does not split the data. Float64 (float32 on MPS).
    """
    check_choice("average_method", average_method, AVERAGE_METHODS)
    if clusterings.dim() != 2 or labels.dim() != 1 or clusterings.shape[1] != labels.shape[0]:
        raise ValueError(
            "clusterings of shape (B, n) and labels of shape (n,) expected, "
            f"got {tuple(clusterings.shape)} and {tuple(labels.shape)}"
        )
    batch, n = clusterings.shape
    dtype = torch.float32 if clusterings.device.type == "mps" else torch.float64
    if batch == 0 or n == 0:  # nothing split: the limit case of two unsplit labellings
        return torch.ones(batch, dtype=dtype, device=clusterings.device)
    if int(clusterings.min()) < 0 or int(labels.min()) < 0:
        raise ValueError("cluster and class ids must be non-negative integers")
    clusterings, labels = clusterings.long(), labels.long().to(clusterings.device)
    num_a, num_b = int(clusterings.max()) + 1, int(labels.max()) + 1
    row = torch.arange(batch, device=clusterings.device).unsqueeze(1)
    in_row = row * num_a + clusterings  # a sample's cluster, numbered across the rows

    def entropy(ids: Tensor, num_ids: int) -> Tensor:
        """``-1/n sum_i log(n_{id_i} / n)``: each sample weighs its own cell's share."""
        counts = torch.bincount(ids.reshape(-1), minlength=num_ids)[ids]
        return -torch.log(counts.to(dtype) / n).sum(dim=-1) / n

    h_a = entropy(in_row, batch * num_a)
    h_b = entropy(labels, num_b)
    h_ab = entropy(in_row * num_b + labels, batch * num_a * num_b)
    mutual = (h_b - (h_ab - h_a)).clamp_min(0.0)
    mean = {
        "min": torch.minimum(h_a, h_b),
        "geometric": torch.sqrt(h_a * h_b),
        "arithmetic": (h_a + h_b) / 2,
        "max": torch.maximum(h_a, h_b),
    }[average_method]
    split = (h_a > 0) & (h_b > 0)  # otherwise I(a; b) = 0 exactly, whatever rounding says
    nmi = torch.where(split & (mutual > 0), mutual / torch.where(split, mean, torch.ones_like(mean)), 0.0)
    return torch.where((h_a == 0) & (h_b == 0), 1.0, nmi)


def nmi(embeddings, labels, num_clusters: int | None = None, seed: int = 0, average_method: str = "geometric") -> float:
    """Normalised mutual information between k-means clusters and the labels.

    k-means (scikit-learn) with as many clusters as classes by default, scored by
    :func:`normalized_mutual_information` (the survey's eq. (11): geometric mean; the
    arithmetic mean is scikit-learn's default).
    """
    from sklearn.cluster import KMeans

    embeddings, labels = _check(embeddings, labels, "euclidean")
    num_classes = int(torch.unique(labels).numel())
    k = num_classes if num_clusters is None else check_positive_int("num_clusters", num_clusters)
    if k > embeddings.shape[0]:
        raise ValueError(f"num_clusters must lie between 1 and the number of samples, got {k}")
    # One k-means++ start (scikit-learn's "auto" for this init): repeating starts costs time for a small change.
    clusters = KMeans(n_clusters=k, n_init=1, random_state=seed).fit_predict(embeddings.cpu().double().numpy())
    return normalized_mutual_information(labels, clusters, average_method)


def retrieval_metrics(
    embeddings,
    labels,
    ks: int | Sequence[int] = (1, 2, 4, 8),
    metric: str = "euclidean",
    with_nmi: bool = True,
    chunk_size: int = 1024,
    backend: str = "auto",
) -> dict[str, float]:
    """Recall@K for each K, MAP@R and (optionally) NMI in one dictionary, keys like ``"R@1"``.

    One neighbour search serves Recall@K and MAP@R (as deep as the larger of max(ks) and
    the largest class); the values equal those of :func:`recall_at_k` and :func:`map_at_r`.
    """
    embeddings, labels = _check(embeddings, labels, metric)
    r = _check_no_singletons(labels) - 1
    ks = _check_ks(ks)
    neighbors = _neighbors(embeddings, max(max(ks), int(r.max())), metric, chunk_size, backend)
    hits = labels[neighbors] == labels[:, None]
    result = {f"R@{k}": value for k, value in _recall_from_hits(hits, ks).items()}
    result["MAP@R"] = _map_at_r_from_hits(hits, r)
    if with_nmi:
        result["NMI"] = nmi(embeddings, labels)
    return result
