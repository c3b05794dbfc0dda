"""Optimizer and learning-rate schedule built from ``cfg.SOLVER``."""
from .build import make_lr_scheduler, make_optimizer
from .lr_scheduler import WarmupMultiStepLR

__all__ = ["make_optimizer", "make_lr_scheduler", "WarmupMultiStepLR"]
