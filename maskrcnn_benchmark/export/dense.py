"""One-stage detectors (DenseDetector: RetinaNet, FCOS, ATSS) in fixed-shape form, for export.

The backbone, the head and its positions (anchors or points) are the trained model's modules;
the detection selection follows ``DensePostProcessor`` (dense_heads/postprocess.py) step by step,
with masks instead of removals (see ``fixed_shape``).
"""
import torch
from torch import nn

from maskrcnn_benchmark.modeling.dense_heads.layout import flatten_level

from .fixed_shape import best_valid, clipped_and_valid, convention_nms_keep, padded_detections


class FixedShapeDenseDetections(nn.Module):
    """``DensePostProcessor`` for one image: per level the (position, class) pairs above the
    probability threshold, the ``pre_nms_top_n`` best by the head's score, decoded, clipped,
    filtered; over all levels class-wise NMS and the ``fpn_post_nms_top_n`` best. Returns
    ``(boxes, scores, labels)``, label 0 for padding."""

    def __init__(self, post_processor):
        super().__init__()
        if post_processor.refine is not None:
            raise NotImplementedError(
                "export: this head refines its detections after NMS (PAA's score voting), which is not exportable"
            )
        if post_processor.nms_thresh <= 0:
            raise NotImplementedError(f"export: an NMS threshold of {post_processor.nms_thresh} is not exportable")
        self.post_processor = post_processor

    def forward(self, positions, box_cls, box_regression, quality, image_size):
        quality = quality if quality is not None else [None] * len(box_cls)
        per_level = [self.for_level(*level, image_size) for level in zip(positions, box_cls, box_regression, quality)]
        scores, valid, boxes, classes = (torch.cat(parts) for parts in zip(*per_level))
        post = self.post_processor
        keep = convention_nms_keep(boxes, scores, valid, post.nms_thresh, post.convention,
                                   post.nms_suppresses_ties, categories=classes + 1)
        scores, keep, boxes, classes = best_valid(scores, keep, post.fpn_post_nms_top_n, boxes, classes)
        return padded_detections(boxes, scores, classes + 1, keep)

    def for_level(self, positions, box_cls, box_regression, quality, image_size):
        post = self.post_processor
        num_anchors = box_regression.shape[1] // 4
        num_classes = box_cls.shape[1] // num_anchors
        class_probs = flatten_level(box_cls, num_classes).sigmoid()[0]
        regression = flatten_level(box_regression, 4)[0]
        quality_probs = None if quality is None else flatten_level(quality, 1).sigmoid()[0]  # P x 1
        candidate = (class_probs > post.pre_nms_thresh).reshape(-1)
        scores = post.score(class_probs, quality_probs).reshape(-1)
        flat_index = torch.arange(scores.numel(), device=scores.device)
        scores, candidate, flat_index = best_valid(scores, candidate, post.pre_nms_top_n, flat_index)
        position_idx, class_idx = flat_index // num_classes, flat_index % num_classes
        boxes = post.decode(regression[position_idx], positions[position_idx])
        boxes, box_valid = clipped_and_valid(boxes, image_size, post.min_size)
        return scores, candidate & box_valid, boxes, class_idx


class ExportableDenseDetector(nn.Module):
    """``forward(images)`` as ``ExportableRCNN``'s: a ``1 x 3 x H x W`` batch as the detector
    receives it; ``(boxes D x 4, scores D, labels D)``, padding rows with label 0;
    D = TEST.DETECTIONS_PER_IMG (or fewer candidates)."""

    def __init__(self, model):
        super().__init__()
        self.backbone = model.backbone
        self.dense_head = model.dense_head
        self.detections = FixedShapeDenseDetections(model.dense_head.box_selector_test)

    def forward(self, images):
        if images.dim() != 4 or images.shape[0] != 1:
            raise ValueError(f"ExportableDenseDetector: images must be 1 x C x H x W, got {tuple(images.shape)}")
        height, width = images.shape[-2:]
        features = self.backbone(images)
        box_cls, box_regression, *quality = self.dense_head.head(features)
        positions = self.dense_head.positions_for_features(features)
        return self.detections(positions, box_cls, box_regression, quality[0] if quality else None, (width, height))
