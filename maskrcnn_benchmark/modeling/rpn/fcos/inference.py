"""FCOS inference: the dense post-processor (``modeling/dense_heads/postprocess.py``) over points.

Per level: points whose class probability exceeds INFERENCE_TH are candidates; the PRE_NMS_TOP_N
best by (class probability x centerness) are decoded into boxes from their (left, top, right,
bottom) distances. Over all levels: class-wise NMS (NMS_TH) and the TEST.DETECTIONS_PER_IMG best
boxes.

The reported score is class probability x centerness. ``sqrt_score=True`` reports its square root
instead, as later public FCOS versions do; the transform is monotonic, so rankings and therefore
COCO AP are unchanged, only the score scale (and any fixed threshold applied to it) differs.
"""
from maskrcnn_benchmark.modeling.dense_heads.points import boxes_from_points
from maskrcnn_benchmark.modeling.dense_heads.postprocess import DensePostProcessor, geometric_mean_with_quality
from maskrcnn_benchmark.structures.box_convention import box_convention_from_config


def centerness_weighted(class_probs, centerness_probs):
    return class_probs * centerness_probs


def fcos_postprocessor(sqrt_score=False, **settings):
    """The dense post-processor with FCOS's decode and score; ``settings`` as DensePostProcessor's."""
    score = geometric_mean_with_quality if sqrt_score else centerness_weighted
    return DensePostProcessor(boxes_from_points, score, **settings)


def make_fcos_postprocessor(config, sqrt_score=False):
    return fcos_postprocessor(sqrt_score, **DensePostProcessor.settings_from(config.MODEL.FCOS, config.TEST),
                              convention=box_convention_from_config(config))
