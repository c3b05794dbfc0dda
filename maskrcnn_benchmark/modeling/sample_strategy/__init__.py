"""Sample strategies: which samples a detector head trains on (hard) and how it weights them
(soft), each selected by name through ``MODEL.SAMPLING_FREE.<STAGE>.HARD`` / ``SOFT``.

Registered here: hard "biased" (Faster R-CNN's sampler), "all" (Sampling-Free); soft "ce",
"focal". A new strategy is one module with one ``@HARD_STRATEGIES.register(name)`` or
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
    build_hard_strategy,
    build_soft_strategy,
    hard_strategy_class,
    soft_strategy_class,
)
from .biased import BiasedSampling, as_hard_strategy
from .cross_entropy import CrossEntropy
from .every_sample import AllSamples
from .focal import FocalLoss

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
    "build_hard_strategy",
    "build_soft_strategy",
    "hard_strategy_class",
    "soft_strategy_class",
    "BiasedSampling",
    "as_hard_strategy",
    "AllSamples",
    "CrossEntropy",
    "FocalLoss",
]
