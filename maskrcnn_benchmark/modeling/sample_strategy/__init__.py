"""Sample strategies: which samples a detector head trains on (hard) and how it weights them
(soft), each selected by name through ``MODEL.SAMPLING_FREE.<STAGE>.HARD`` / ``SOFT``.

Registered here: hard "biased" (Faster R-CNN's sampler), "all" (Sampling-Free), and the heuristics
the paper compares with in Table VIII: hard "ohem", "iou_balanced" (Libra R-CNN), "isr_n" (PISA);
soft "ce", "focal", "ghm_c" (GHM), "isr_p" (PISA). A new strategy is one module with one ``@HARD_STRATEGIES.register(name)`` or
``@SOFT_STRATEGIES.register(name)`` (see docs/ARCHITECTURE.md, "Add a sample strategy").
"""
from .base import (
    CLASSIFIER_KINDS,
    HARD_STRATEGIES,
    SIGMOID,
    SOFT_STRATEGIES,
    SOFTMAX,
    Candidates,
    HardStrategy,
    Selection,
    SoftStrategy,
    TrainedSamples,
    build_hard_strategy,
    build_soft_strategy,
    hard_strategy_class,
    normalised_classification_loss,
    soft_strategy_class,
)
from .biased import BiasedSampling, BudgetedSampling, as_hard_strategy
from .cross_entropy import CrossEntropy
from .every_sample import AllSamples
from .focal import FocalLoss
from .ghm import GradientHarmonizedClassification
from .iou_balanced import IoUBalancedNegativeSampling
from .isr import IoUHierarchicalReweighting, ScoreHierarchicalSampling
from .ohem import OnlineHardExampleMining

__all__ = [
    "HARD_STRATEGIES",
    "SOFT_STRATEGIES",
    "CLASSIFIER_KINDS",
    "SIGMOID",
    "SOFTMAX",
    "Candidates",
    "Selection",
    "HardStrategy",
    "SoftStrategy",
    "TrainedSamples",
    "build_hard_strategy",
    "build_soft_strategy",
    "hard_strategy_class",
    "soft_strategy_class",
    "normalised_classification_loss",
    "BiasedSampling",
    "BudgetedSampling",
    "as_hard_strategy",
    "AllSamples",
    "CrossEntropy",
    "FocalLoss",
    "GradientHarmonizedClassification",
    "IoUBalancedNegativeSampling",
    "IoUHierarchicalReweighting",
    "OnlineHardExampleMining",
    "ScoreHierarchicalSampling",
]
