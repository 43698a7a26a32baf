"""Miners pick the informative pairs or triplets of a batch; a loss accepts what they return.

Call a miner as ``miner(embeddings, labels)``; it returns ``(anchors, positives, negatives)``
(long tensors on the embeddings' device) to pass to a loss as ``indices_tuple``; the
multi-similarity miner returns pairs ``(anchors_p, positives, anchors_n, negatives)``.
"""

from ..indices import pairs_from_indices, triplets_from_indices
from .all_triplets import AllTripletsMiner, all_triplet_indices, count_triplets
from .base import TripletMiner
from .batch_hard import BatchHardMiner
from .distance_weighted import DistanceWeightedMiner, log_sphere_distance_density
from .hardest_negative import HardestNegativeMiner
from .multi_similarity import MultiSimilarityMiner
from .random_triplets import RandomTripletsMiner
from .semihard import SemiHardNegativeMiner

__all__ = [
    "TripletMiner",
    "AllTripletsMiner",
    "RandomTripletsMiner",
    "HardestNegativeMiner",
    "SemiHardNegativeMiner",
    "BatchHardMiner",
    "MultiSimilarityMiner",
    "DistanceWeightedMiner",
    "log_sphere_distance_density",
    "count_triplets",
    "all_triplet_indices",
    "pairs_from_indices",
    "triplets_from_indices",
]
