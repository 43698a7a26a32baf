"""Loss functions, one per module; each is an ``nn.Module`` called as ``loss(embeddings, labels)``.

Pair and triplet losses (survey 1.1-1.5) with the angular (Wang et al. 2017) and margin (Wu et
al. 2017) losses, the centre loss (1.6), the facility-location clustering loss (1.7), NCA, the
proxy losses (1.8: Proxy-NCA, Proxy-Anchor), the deep clustering and ranked list losses (1.9), the
softmax losses with temperature (2.1-2.2), the margin softmaxes (L2-softmax, NormFace, CosFace,
ArcFace; the multiplicative L-softmax and SphereFace) and the pair-weighting losses
multi-similarity (Wang et al. 2019), circle (Sun et al. 2020) and binomial deviance (Yi et al. 2014).
"""

from .angular import AngularLoss
from .base import REDUCTIONS, EmptyBatchWarning, LossStats, LossTerms, MetricLoss, label_masks, zero_loss
from .binomial_deviance import BinomialDevianceLoss
from .center import CenterLoss
from .circle import CircleLoss
from .class_weights import ClassWeightLoss, init_class_weights
from .contrastive import ContrastiveLoss
from .coupled_clusters import CoupledClustersLoss
from .deep_clustering import DeepClusteringLoss
from .facility_location import FacilityLocationLoss, FacilityLocationMedoids
from .heated_up_softmax import HeatedUpSoftmaxLoss, HeatUpSchedule
from .large_margin import LargeMarginSoftmaxLoss, SphereFaceLoss, annealed_lambda, psi
from .lifted_structure import LiftedStructureLoss
from .margin import MarginLoss
from .margin_softmax import ArcFaceLoss, CosFaceLoss, L2SoftmaxLoss, NormFaceLoss
from .multi_similarity import MultiSimilarityLoss
from .nca import NCALoss
from .norm_softmax import NormSoftmaxLoss
from .npair import NPairLoss, npair_batch_sampler, split_anchor_positive
from .proxy_anchor import ProxyAnchorLoss
from .proxy_nca import ProxyNCALoss
from .ranked_list import RankedListLoss
from .softmax_temperature import (
    embedding_gradient,
    feature_gradient,
    logit_gradient,
    soft_target_cross_entropy,
    softened_softmax,
)
from .triplet import TripletLoss

__all__ = [
    "MetricLoss",
    "LossStats",
    "LossTerms",
    "REDUCTIONS",
    "EmptyBatchWarning",
    "label_masks",
    "zero_loss",
    "ClassWeightLoss",
    "init_class_weights",
    "ContrastiveLoss",
    "TripletLoss",
    "LiftedStructureLoss",
    "NPairLoss",
    "npair_batch_sampler",
    "split_anchor_positive",
    "CoupledClustersLoss",
    "CenterLoss",
    "FacilityLocationLoss",
    "FacilityLocationMedoids",
    "NCALoss",
    "ProxyNCALoss",
    "ProxyAnchorLoss",
    "DeepClusteringLoss",
    "RankedListLoss",
    "MultiSimilarityLoss",
    "CircleLoss",
    "BinomialDevianceLoss",
    "AngularLoss",
    "MarginLoss",
    "NormSoftmaxLoss",
    "L2SoftmaxLoss",
    "NormFaceLoss",
    "CosFaceLoss",
    "ArcFaceLoss",
    "HeatedUpSoftmaxLoss",
    "HeatUpSchedule",
    "LargeMarginSoftmaxLoss",
    "SphereFaceLoss",
    "annealed_lambda",
    "psi",
    "softened_softmax",
    "soft_target_cross_entropy",
    "logit_gradient",
    "feature_gradient",
    "embedding_gradient",
]
