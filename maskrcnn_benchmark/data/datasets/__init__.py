"""Detection datasets; each returns ``(image, target BoxList, index)``."""
from .abstract import AbstractDataset
from .coco import COCODataset
from .concat_dataset import ConcatDataset
from .voc import PascalVOCDataset

__all__ = ["AbstractDataset", "COCODataset", "ConcatDataset", "PascalVOCDataset"]
