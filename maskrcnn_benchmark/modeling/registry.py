"""Name -> builder tables through which the config picks each part of a detector.

A module registers itself with one decorator (``@registry.DENSE_HEADS.register("FCOS")``); a yaml
names it. Modules outside the package are found once they are imported, which the config's
``CUSTOM_IMPORTS`` does before anything is looked up (see ``modeling/architecture.py``).
"""
from maskrcnn_benchmark.utils.registry import Registry

# MODEL.META_ARCHITECTURE -> a callable ``(cfg) -> detector``: "GeneralizedRCNN", "DenseDetector"
META_ARCHITECTURES = Registry()
BACKBONES = Registry()
RPN_HEADS = Registry()
# MODEL.DENSE_HEAD (or a legacy MODEL.<NAME>_ON flag) -> a head class with ``from_config(cfg, in_channels)``
DENSE_HEADS = Registry()
ROI_BOX_FEATURE_EXTRACTORS = Registry()
ROI_BOX_PREDICTOR = Registry()
ROI_KEYPOINT_FEATURE_EXTRACTORS = Registry()
ROI_KEYPOINT_PREDICTOR = Registry()
ROI_MASK_FEATURE_EXTRACTORS = Registry()
ROI_MASK_PREDICTOR = Registry()
