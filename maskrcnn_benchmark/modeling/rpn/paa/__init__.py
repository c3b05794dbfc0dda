"""PAA: probabilistic anchor assignment with IoU prediction (Kim & Lee, ECCV 2020)."""
from .paa import PAAModule, build_paa

__all__ = ["PAAModule", "build_paa"]
