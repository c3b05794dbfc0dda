"""ATSS training targets and losses.

Positives come from adaptive training sample selection (``selection.py``); every other anchor is
background (ATSS ignores no anchor, including those crossing the image border). Losses:

- classification (focal, or the Sampling-Free per-class sigmoid CE) summed over all anchors and
  classes, divided by the number of positives (at least 1, so an image without boxes is finite);
- GIoU loss of the decoded boxes, weighted by the centre-ness targets and divided by their sum,
  times ``REG_LOSS_WEIGHT``;
- centre-ness BCE over positives, divided by the number of positives.

Normalisers are averaged over processes so every GPU divides by the same number.
"""
import torch
import torch.distributed as dist
import torch.nn.functional as F

from maskrcnn_benchmark.modeling.rpn.atss.box_overlap import box_overlap_loss
from maskrcnn_benchmark.modeling.rpn.atss.selection import centerness_targets, select_atss_positives
from maskrcnn_benchmark.modeling.rpn.retinanet.classification_loss import make_one_stage_classification_loss
from maskrcnn_benchmark.modeling.rpn.utils import permute_and_flatten


def mean_over_processes(value):
    """Average of a scalar tensor over the distributed group (itself when not distributed)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return value
    value = value.clone()
    dist.all_reduce(value)
    return value / dist.get_world_size()


def flatten_levels(per_level, channels):
    """Per-level ``N x (A*channels) x H x W`` maps -> ``N x R x channels`` in anchor order."""
    flat = []
    for level in per_level:
        n, a_times_c, h, w = level.shape
        flat.append(permute_and_flatten(level, n, a_times_c // channels, channels, h, w))
    return torch.cat(flat, dim=1)


def zero_loss_through(*tensors):
    """A zero that still reaches every prediction, so a batch without positives back-propagates."""
    return sum(t.sum() * 0.0 for t in tensors)


class ATSSLossComputation:
    def __init__(self, head_cfg, cls_loss_kind, box_coder):
        if head_cfg.POSITIVE_TYPE != "ATSS":
            raise ValueError(
                f"MODEL.ATSS.POSITIVE_TYPE={head_cfg.POSITIVE_TYPE!r} is not supported; only 'ATSS' is implemented"
            )
        if head_cfg.REGRESSION_TYPE != "BOX":
            raise ValueError(
                f"MODEL.ATSS.REGRESSION_TYPE={head_cfg.REGRESSION_TYPE!r} is not supported; only 'BOX' is implemented"
            )
        self.topk = head_cfg.TOPK
        self.reg_loss_weight = head_cfg.REG_LOSS_WEIGHT
        self.box_coder = box_coder
        self.cls_loss_func = make_one_stage_classification_loss(
            cls_loss_kind, head_cfg.LOSS_GAMMA, head_cfg.LOSS_ALPHA
        )

    def assign(self, anchors_per_level, target):
        """Labels (class or 0) and matched ground-truth boxes for one image's anchors."""
        target = target.convert("xyxy")
        anchors = torch.cat(list(anchors_per_level), dim=0)
        gt_boxes = target.bbox.to(anchors.dtype)
        matched = select_atss_positives(anchors_per_level, gt_boxes, self.topk)
        if gt_boxes.shape[0] == 0:
            return torch.zeros_like(matched), anchors.clone()
        gt_labels = target.get_field("labels").to(device=matched.device, dtype=torch.long)
        labels = torch.where(matched >= 0, gt_labels[matched.clamp(min=0)], torch.zeros_like(matched))
        return labels, gt_boxes[matched.clamp(min=0)]

    def prepare_targets(self, anchors, targets):
        labels, gt_boxes, flat_anchors = [], [], []
        for anchors_per_image, target in zip(anchors, targets):
            anchors_per_level = [level.bbox for level in anchors_per_image]
            image_labels, image_boxes = self.assign(anchors_per_level, target)
            labels.append(image_labels)
            gt_boxes.append(image_boxes)
            flat_anchors.append(torch.cat(anchors_per_level, dim=0))
        return torch.cat(labels), torch.cat(gt_boxes), torch.cat(flat_anchors)

    def __call__(self, box_cls, box_regression, centerness, targets, anchors):
        """Returns ``(loss_cls, loss_reg, loss_centerness)``; inputs are per-level head outputs."""
        num_classes = box_cls[0].shape[1] // (box_regression[0].shape[1] // 4)
        logits = flatten_levels(box_cls, num_classes).reshape(-1, num_classes)
        regression = flatten_levels(box_regression, 4).reshape(-1, 4)
        quality = flatten_levels(centerness, 1).reshape(-1)
        labels, gt_boxes, flat_anchors = self.prepare_targets(anchors, targets)

        positive = labels > 0
        num_positive = mean_over_processes(positive.sum().to(logits.dtype))
        normaliser = num_positive.clamp(min=1.0)
        loss_cls = self.cls_loss_func(logits, labels.int()) / normaliser

        if not bool(positive.any()):
            zero = zero_loss_through(regression, quality)
            return loss_cls, zero, zero

        pred_boxes = self.box_coder.decode(regression[positive], flat_anchors[positive])
        centerness_target = centerness_targets(flat_anchors[positive], gt_boxes[positive])
        weight_sum = mean_over_processes(centerness_target.sum()).clamp(min=1e-6)
        per_box = box_overlap_loss(pred_boxes, gt_boxes[positive], "giou")
        loss_reg = (per_box * centerness_target).sum() / weight_sum * self.reg_loss_weight
        loss_centerness = F.binary_cross_entropy_with_logits(
            quality[positive], centerness_target, reduction="sum"
        ) / normaliser
        return loss_cls, loss_reg, loss_centerness


def make_atss_loss_evaluator(cfg, box_coder):
    return ATSSLossComputation(cfg.MODEL.ATSS, cfg.MODEL.SAMPLING_FREE.ONE_STAGE.CLS_LOSS, box_coder)
