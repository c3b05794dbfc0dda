"""Detection datasets; each returns ``(image, target BoxList, index)``."""
from .abstract import AbstractDataset
from .coco import COCODataset
from .concat_dataset import ConcatDataset
from .registration import register_coco_instances, register_voc_instances
from .voc import PascalVOCDataset

__all__ = ["AbstractDataset", "COCODataset", "ConcatDataset", "PascalVOCDataset", "register_coco_instances",
           "register_voc_instances"]
