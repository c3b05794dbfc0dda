"""FCOS inference: the dense post-processor (``modeling/dense_heads/postprocess.py``) over points.

Per level: points whose class probability exceeds INFERENCE_TH are candidates; the PRE_NMS_TOP_N
best by (class probability x centerness) are decoded into boxes from their (left, top, right,
bottom) distances. Over all levels: class-wise NMS (NMS_TH) and the TEST.DETECTIONS_PER_IMG best
boxes.

The reported score is sqrt(class probability x centerness), as the official FCOS code reports it
(tianzhi0549/FCOS, ``FCOSPostProcessor``); ``sqrt_score=False`` reports the product itself (the
first FCOS release). The square root is monotonic, so the candidates kept, the NMS order and
therefore COCO AP are the same; only the score scale differs (a fixed threshold applied to the
reported scores, e.g. a demo's confidence threshold, keeps different boxes).
"""
from maskrcnn_benchmark.modeling.dense_heads.points import boxes_from_points
from maskrcnn_benchmark.modeling.dense_heads.postprocess import DensePostProcessor, geometric_mean_with_quality
from maskrcnn_benchmark.structures.box_convention import box_convention_from_config


def centerness_weighted(class_probs, centerness_probs):
    return class_probs * centerness_probs


def fcos_postprocessor(sqrt_score=True, **settings):
    """The dense post-processor with FCOS's decode and score; ``settings`` as DensePostProcessor's."""
    score = geometric_mean_with_quality if sqrt_score else centerness_weighted
    return DensePostProcessor(boxes_from_points, score, **settings)


def make_fcos_postprocessor(config, sqrt_score=True):
    return fcos_postprocessor(sqrt_score, **DensePostProcessor.settings_from(config.MODEL.FCOS, config.TEST),
                              convention=box_convention_from_config(config))
