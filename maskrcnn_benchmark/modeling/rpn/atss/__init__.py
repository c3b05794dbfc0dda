"""ATSS: adaptive training sample selection (Zhang et al., CVPR 2020)."""
from .atss import ATSSModule, build_atss

__all__ = ["ATSSModule", "build_atss"]
