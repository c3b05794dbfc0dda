"""Optimizer and learning-rate schedule built from ``cfg.SOLVER``."""
from .build import ConfiguredSGD, check_solver_config, make_lr_scheduler, make_optimizer
from .lr_scheduler import WarmupMultiStepLR

__all__ = ["make_optimizer", "make_lr_scheduler", "WarmupMultiStepLR", "ConfiguredSGD", "check_solver_config"]
