"""ATSS training targets and losses.

Positives come from adaptive training sample selection (``selection.py``); every other anchor is
background (ATSS ignores no anchor, including those crossing the image border). Losses:

- classification (the soft strategy: focal, or the Sampling-Free per-class sigmoid CE) over the
  anchors the hard strategy trains ("all": every anchor), divided by the number of positives (at
  least 1, so an image without boxes is finite);
- GIoU loss of the decoded boxes, weighted by the centre-ness targets and divided by their sum,
  times ``REG_LOSS_WEIGHT``;
- centre-ness BCE over positives, divided by the number of positives.

Divisors are averaged over processes so every GPU divides by the same number.
"""
import torch
import torch.nn.functional as F

from maskrcnn_benchmark.modeling.dense_heads.box_losses import box_overlap_loss, zero_loss_through
from maskrcnn_benchmark.modeling.dense_heads.classification import dense_classification_loss
from maskrcnn_benchmark.modeling.dense_heads.layout import flatten_levels
from maskrcnn_benchmark.modeling.dense_heads.normalizer import cross_process_normalizer
from maskrcnn_benchmark.modeling.rpn.atss.selection import anchor_centerness, select_atss_positives
from maskrcnn_benchmark.modeling.sample_strategy import AllSamples


class ATSSLossComputation:
    """``cls_loss_func``: the classification loss (the head's soft strategy); ``hard_strategy``:
    which anchors it trains (default "all")."""

    def __init__(self, cls_loss_func, box_coder, topk=9, reg_loss_weight=2.0, hard_strategy=None):
        self.cls_loss_func = cls_loss_func
        self.hard_strategy = hard_strategy or AllSamples()
        self.box_coder = box_coder
        self.topk = topk
        self.reg_loss_weight = reg_loss_weight

    def assign(self, anchors_per_level, target):
        """Labels (class or 0) and matched ground-truth boxes for one image's anchors."""
        target = target.convert("xyxy")
        anchors = torch.cat(list(anchors_per_level), dim=0)
        gt_boxes = target.bbox.to(anchors.dtype)
        matched = select_atss_positives(anchors_per_level, gt_boxes, self.topk, self.box_coder.convention)
        if gt_boxes.shape[0] == 0:
            return torch.zeros_like(matched), anchors.clone()
        gt_labels = target.get_field("labels").to(device=matched.device, dtype=torch.long)
        labels = torch.where(matched >= 0, gt_labels[matched.clamp(min=0)], torch.zeros_like(matched))
        return labels, gt_boxes[matched.clamp(min=0)]

    def __call__(self, box_cls, box_regression, centerness, targets, anchors_per_level):
        """Per-level head outputs and the anchors of each level (the same for every image).
        Returns ``(loss_cls, loss_reg, loss_centerness)``."""
        num_classes = box_cls[0].shape[1] // (box_regression[0].shape[1] // 4)
        labels, gt_boxes = (torch.stack(t) for t in zip(*(self.assign(anchors_per_level, t) for t in targets)))
        loss_cls, normaliser = dense_classification_loss(
            self.hard_strategy, self.cls_loss_func, flatten_levels(box_cls, num_classes), labels
        )
        regression = flatten_levels(box_regression, 4).reshape(-1, 4)
        quality = flatten_levels(centerness, 1).reshape(-1)
        positive = labels.reshape(-1) > 0
        if not bool(positive.any()):
            zero = zero_loss_through(regression, quality)
            return loss_cls, zero, zero

        anchors = torch.cat(list(anchors_per_level), dim=0).repeat(len(targets), 1)[positive]
        gt_boxes = gt_boxes.reshape(-1, 4)[positive]
        pred_boxes = self.box_coder.decode(regression[positive], anchors)
        centerness_target = anchor_centerness(anchors, gt_boxes)
        weight_sum = cross_process_normalizer(centerness_target.sum(), minimum=1e-6)
        per_box = box_overlap_loss(pred_boxes, gt_boxes, "giou")
        loss_reg = (per_box * centerness_target).sum() / weight_sum * self.reg_loss_weight
        loss_centerness = F.binary_cross_entropy_with_logits(
            quality[positive], centerness_target, reduction="sum"
        ) / normaliser
        return loss_cls, loss_reg, loss_centerness
