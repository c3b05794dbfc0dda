"""Image + target transforms and the pipelines built from the config."""
from .build import build_transforms
from .transforms import (ColorJitter, Compose, Normalize, RandomHorizontalFlip, RandomVerticalFlip,
                         Resize, ToBoxConvention, ToTensor)

__all__ = ["build_transforms", "ColorJitter", "Compose", "Normalize", "RandomHorizontalFlip",
           "RandomVerticalFlip", "Resize", "ToBoxConvention", "ToTensor"]
