"""Every valid triplet of a batch, and how many there are (survey section 1.2).

A triplet ``(a, p, n)`` is valid when ``a != p``, ``label[a] == label[p]`` and
``label[n] != label[a]``. For a batch of ``n`` samples in which class ``c`` has ``n_c``
members there are

    sum_c n_c (n_c - 1) (n - n_c)

valid triplets (ordered anchor-positive pairs times the anchor's negatives): O(n^3) for
a class-balanced batch, which is why the survey says exhaustive triplet training does
not scale and why mining matters. ``count_triplets`` gives the number without building
the triplets; ``all_triplet_indices`` builds them pair by pair, in memory proportional to
the number of triplets.
"""

from __future__ import annotations

from torch import Tensor

from ..indices import all_triplet_indices, count_triplets  # noqa: F401 (re-exported)
from .base import TripletMiner


class AllTripletsMiner(TripletMiner):
    """Returns every valid triplet of the batch (no selection: the baseline of section 1.2).

    Most of these triplets are trivial once training has started (their loss is zero), which
    is what ``TripletLoss.last_stats.active_fraction`` shows. ``last_num_triplets`` equals
    ``count_triplets(labels)``.
    """

    def mine(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return all_triplet_indices(labels)
