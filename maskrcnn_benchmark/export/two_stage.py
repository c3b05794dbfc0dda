"""Faster R-CNN (GeneralizedRCNN with a box head) in fixed-shape form, for export.

The network layers are the trained model's own modules; only the selection steps between them
(proposals, RoI pooling over the FPN levels, final detections) are written here with masks
(see ``fixed_shape``), each following its eager counterpart step by step:
``RPNPostProcessor`` (rpn/inference.py), ``Pooler`` (poolers.py) and ``PostProcessor``
(roi_heads/box_head/inference.py).
"""
import copy

import torch
from torch import nn
from torch.nn import functional as F

from maskrcnn_benchmark.modeling.rpn.utils import permute_and_flatten
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.image_list import ImageList

from .fixed_shape import best_valid, clipped_and_valid, convention_nms_keep, padded_detections


class FixedShapeProposals(nn.Module):
    """``RPNPostProcessor`` (test mode, one image): per level the ``pre_nms_top_n`` best anchors,
    decoded, clipped, filtered, NMS, the ``post_nms_top_n`` best; then the ``fpn_post_nms_top_n``
    best of all levels. Returns ``(boxes, valid)``."""

    def __init__(self, post_processor):
        super().__init__()
        self.post_processor = post_processor

    def forward(self, anchors, objectness, box_regression, image_size):
        boxes, scores, valid = [], [], []
        for level_anchors, level_objectness, level_regression in zip(anchors, objectness, box_regression):
            level_scores, level_valid, level_boxes = self.for_level(level_anchors, level_objectness,
                                                                    level_regression, image_size)
            boxes.append(level_boxes)
            scores.append(level_scores)
            valid.append(level_valid)
        boxes, scores, valid = torch.cat(boxes), torch.cat(scores), torch.cat(valid)
        if len(anchors) > 1:
            scores, valid, boxes = best_valid(scores, valid, self.post_processor.fpn_post_nms_top_n, boxes)
        return boxes, valid

    def for_level(self, anchors, objectness, box_regression, image_size):
        selector = self.post_processor
        N, A, H, W = objectness.shape
        objectness = permute_and_flatten(objectness, N, A, 1, H, W).view(N, -1).sigmoid()[0]
        box_regression = permute_and_flatten(box_regression, N, A, 4, H, W)[0]
        objectness, top = objectness.topk(min(selector.pre_nms_top_n, A * H * W), sorted=True)
        proposals = selector.box_coder.decode(box_regression[top], anchors.bbox[top])
        boxes, valid = clipped_and_valid(proposals, image_size, selector.min_size)
        if selector.nms_thresh > 0:
            valid = convention_nms_keep(boxes, objectness, valid, selector.nms_thresh, selector.convention)
        return best_valid(objectness, valid, selector.post_nms_top_n, boxes)


class FixedShapePooler(nn.Module):
    """``Pooler``: RoIAlign of each box on its FPN level. Every level pools every box and each
    row is taken from its own level (boxes of no level stay zero), so no tensor's size depends
    on how the boxes spread over the levels."""

    def __init__(self, pooler):
        super().__init__()
        self.pooler = pooler

    def forward(self, x, boxes):
        pooler = self.pooler
        rois = pooler.convert_to_roi_format(boxes)
        if len(pooler.poolers) == 1:
            return pooler.poolers[0](x[0], rois.to(x[0].dtype))
        levels = pooler.map_levels(boxes)
        result = None
        for level, (level_pooler, feature) in enumerate(zip(pooler.poolers, x)):
            pooled = level_pooler(feature, rois)
            if result is None:
                result = torch.zeros_like(pooled)
            result = torch.where((levels == level)[:, None, None, None], pooled, result)
        return result


def with_fixed_shape_pooler(feature_extractor):
    """A shallow copy of a RoI feature extractor (same layers and weights) whose ``pooler`` is
    the fixed-shape one; works for every extractor that pools through ``self.pooler``."""
    if not isinstance(getattr(feature_extractor, "pooler", None), nn.Module):
        raise NotImplementedError(
            f"export: the RoI feature extractor {type(feature_extractor).__name__} has no `pooler`; "
            "only extractors that pool through a Pooler can be exported"
        )
    clone = copy.copy(feature_extractor)
    clone._modules = dict(feature_extractor._modules)
    clone._modules["pooler"] = FixedShapePooler(feature_extractor.pooler)
    return clone


class FixedShapeBoxDetections(nn.Module):
    """The box head's ``PostProcessor`` for one image: per (proposal, foreground class) a decoded,
    clipped box; those above the score threshold and not empty, class-wise NMS, the
    ``detections_per_img`` best. Returns ``(boxes, scores, labels)``, label 0 for padding."""

    def __init__(self, post_processor):
        super().__init__()
        if post_processor.bbox_aug_enabled:
            raise NotImplementedError("export: test-time augmentation (TEST.BBOX_AUG.ENABLED) is not exportable")
        if post_processor.nms <= 0:
            raise NotImplementedError(
                f"export: MODEL.ROI_HEADS.NMS={post_processor.nms} (<= 0 suppresses by IoU 0) is not exportable"
            )
        self.post_processor = post_processor

    def forward(self, class_logits, box_regression, proposals, proposal_valid, image_size):
        post = self.post_processor
        class_prob = F.softmax(class_logits, dim=-1)
        num_classes = class_prob.shape[1]
        if post.cls_agnostic_bbox_reg:
            box_regression = box_regression[:, -4:]
        decoded = post.box_coder.decode(box_regression.view(len(proposals), -1), proposals)
        if post.cls_agnostic_bbox_reg:
            decoded = decoded.repeat(1, num_classes)
        boxlist = post.prepare_boxlist(decoded, class_prob, image_size).clip_to_image(remove_empty=False)

        boxes = boxlist.bbox.reshape(-1, num_classes, 4)
        scores = boxlist.get_field("scores").reshape(-1, num_classes)
        nonempty = (boxes[..., 2] > boxes[..., 0]) & (boxes[..., 3] > boxes[..., 1])
        foreground = torch.arange(num_classes, device=scores.device) > 0  # background is never a detection
        candidate = (scores > post.score_thresh) & nonempty & foreground & proposal_valid[:, None]
        classes = torch.arange(num_classes, device=scores.device).repeat(len(proposals))
        boxes, scores, candidate = boxes.reshape(-1, 4), scores.reshape(-1), candidate.reshape(-1)

        keep = convention_nms_keep(boxes, scores, candidate, post.nms, post.convention, categories=classes)
        scores, keep, boxes, classes = best_valid(scores, keep, post.detections_per_img, boxes, classes)
        return padded_detections(boxes, scores, classes, keep)


class ExportableRCNN(nn.Module):
    """``forward(images)``: ``images`` a ``1 x 3 x H x W`` batch as the detector receives it
    (resized, normalised, H and W multiples of DATALOADER.SIZE_DIVISIBILITY); returns
    ``(boxes D x 4, scores D, labels D)``, the detections first by decreasing score, the rest
    padding with label 0. D = MODEL.ROI_HEADS.DETECTIONS_PER_IMG (or fewer candidates)."""

    def __init__(self, model):
        super().__init__()
        if not model.roi_heads or "box" not in model.roi_heads:
            raise NotImplementedError("export: an RPN-only GeneralizedRCNN (MODEL.RPN_ONLY) is not exportable")
        extra = sorted(set(model.roi_heads.keys()) - {"box"})
        if extra:
            raise NotImplementedError(
                f"export: the RoI heads {extra} are not exportable (masks are pasted into the image "
                "at sizes only known at run time); export the box detector (MODEL.MASK_ON False)"
            )
        box_head = model.roi_heads.box
        self.backbone = model.backbone
        self.rpn_head = model.rpn.head
        self.anchor_generator = model.rpn.anchor_generator
        self.proposals = FixedShapeProposals(model.rpn.box_selector_test)
        self.feature_extractor = with_fixed_shape_pooler(box_head.feature_extractor)
        self.predictor = box_head.predictor
        self.detections = FixedShapeBoxDetections(box_head.post_processor)

    def forward(self, images):
        if images.dim() != 4 or images.shape[0] != 1:
            raise ValueError(f"ExportableRCNN: images must be 1 x C x H x W, got {tuple(images.shape)}")
        height, width = images.shape[-2:]
        image_size = (width, height)  # BoxList's order
        features = self.backbone(images)
        objectness, box_regression = self.rpn_head(features)
        (anchors,) = self.anchor_generator(ImageList(images, [(height, width)]), features)
        proposals, valid = self.proposals(anchors, objectness, box_regression, image_size)
        x = self.feature_extractor(features, [BoxList(proposals, image_size, mode="xyxy")])
        class_logits, box_regression = self.predictor(x)
        return self.detections(class_logits, box_regression, proposals, valid, image_size)
