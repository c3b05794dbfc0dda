"""PAA training targets and losses (Kim & Lee, ECCV 2020).

Assignment, per image and without gradient: each box's candidate anchors (``candidates.py``) are
scored by the loss they would get as its positives, i.e. classification loss (the configured focal
or CE loss towards the box's class, summed over classes) + REG_LOSS_WEIGHT x box loss of the
decoded prediction. A two-Gaussian mixture over those scores splits them (``gaussian_mixture.py``);
the selected candidates are positives, every other anchor is background.

Losses, each divided by the number of positives (at least 1, averaged over processes):
classification over all anchors; REG_LOSS_WEIGHT x box loss (REG_LOSS_TYPE, "giou" or "iou") over
positives; IOU_LOSS_WEIGHT x BCE of the IoU branch towards the IoU of the decoded prediction with its
box. A batch without any positive gives a finite classification loss and zero (but differentiable)
box and IoU losses.
"""
import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss

from maskrcnn_benchmark.modeling.rpn.atss.box_overlap import aligned_iou_and_giou, box_overlap_loss
from maskrcnn_benchmark.modeling.rpn.atss.loss import flatten_levels, mean_over_processes, zero_loss_through
from maskrcnn_benchmark.modeling.rpn.paa.candidates import select_paa_candidates
from maskrcnn_benchmark.modeling.rpn.paa.gaussian_mixture import split_by_mixture
from maskrcnn_benchmark.modeling.rpn.retinanet.classification_loss import (
    make_one_stage_classification_loss,
    one_hot_targets,
)


def per_sample_classification_loss(logits, labels, kind, gamma, alpha):
    """Classification loss of each row towards its label (1..C), summed over the C classes."""
    targets = one_hot_targets(labels, logits.shape[1], logits.dtype)
    if kind == "focal":
        return sigmoid_focal_loss(logits, targets, alpha=alpha, gamma=gamma, reduction="none").sum(dim=1)
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="none").sum(dim=1)


class PAALossComputation:
    def __init__(self, head_cfg, cls_loss_kind, box_coder):
        self.iou_threshold = head_cfg.IOU_THRESHOLD
        self.topk = head_cfg.TOPK
        self.reg_loss_type = head_cfg.REG_LOSS_TYPE
        self.reg_loss_weight = head_cfg.REG_LOSS_WEIGHT
        self.iou_loss_weight = head_cfg.IOU_LOSS_WEIGHT
        self.gamma, self.alpha = head_cfg.LOSS_GAMMA, head_cfg.LOSS_ALPHA
        self.cls_loss_kind = cls_loss_kind
        self.box_coder = box_coder
        self.cls_loss_func = make_one_stage_classification_loss(cls_loss_kind, self.gamma, self.alpha)
        # Fail at build time, not at the first positive.
        box_overlap_loss(torch.zeros(0, 4), torch.zeros(0, 4), self.reg_loss_type)

    def candidates(self, anchors_per_level, target):
        gt_boxes = target.convert("xyxy").bbox.to(anchors_per_level[0].dtype)
        return select_paa_candidates(anchors_per_level, gt_boxes, self.iou_threshold, self.topk)

    @torch.no_grad()
    def assign(self, anchors_per_level, target, logits, regression):
        """Labels (class or 0) and matched boxes of one image; ``logits`` ``[A, C]``, ``regression`` ``[A, 4]``."""
        target = target.convert("xyxy")
        anchors = torch.cat(list(anchors_per_level), dim=0)
        labels = torch.zeros(anchors.shape[0], dtype=torch.long, device=anchors.device)
        matched_boxes = anchors.clone()
        anchor_idx, gt_idx = self.candidates(anchors_per_level, target)
        if anchor_idx.numel() == 0:
            return labels, matched_boxes

        gt_boxes = target.bbox.to(anchors.dtype)
        gt_labels = target.get_field("labels").to(device=anchors.device, dtype=torch.long)
        pred_boxes = self.box_coder.decode(regression[anchor_idx].float(), anchors[anchor_idx])
        scores = per_sample_classification_loss(
            logits[anchor_idx].float(), gt_labels[gt_idx], self.cls_loss_kind, self.gamma, self.alpha
        ) + self.reg_loss_weight * box_overlap_loss(pred_boxes, gt_boxes[gt_idx], self.reg_loss_type)

        positive = torch.zeros_like(anchor_idx, dtype=torch.bool)
        for box in torch.unique(gt_idx):
            members = (gt_idx == box).nonzero(as_tuple=True)[0]
            positive[members] = split_by_mixture(scores[members])
        labels[anchor_idx[positive]] = gt_labels[gt_idx[positive]]
        matched_boxes[anchor_idx[positive]] = gt_boxes[gt_idx[positive]]
        return labels, matched_boxes

    def __call__(self, box_cls, box_regression, iou_pred, targets, anchors):
        """Returns ``(loss_cls, loss_reg, loss_iou)``; inputs are per-level head outputs."""
        num_classes = box_cls[0].shape[1] // (box_regression[0].shape[1] // 4)
        logits = flatten_levels(box_cls, num_classes)  # [N, R, C]
        regression = flatten_levels(box_regression, 4)
        iou_logits = flatten_levels(iou_pred, 1).reshape(-1)

        labels, gt_boxes, flat_anchors = [], [], []
        for image, (anchors_per_image, target) in enumerate(zip(anchors, targets)):
            anchors_per_level = [level.bbox for level in anchors_per_image]
            image_labels, image_boxes = self.assign(
                anchors_per_level, target, logits[image].detach(), regression[image].detach()
            )
            labels.append(image_labels)
            gt_boxes.append(image_boxes)
            flat_anchors.append(torch.cat(anchors_per_level, dim=0))
        labels, gt_boxes, flat_anchors = torch.cat(labels), torch.cat(gt_boxes), torch.cat(flat_anchors)
        logits = logits.reshape(-1, num_classes)
        regression = regression.reshape(-1, 4)

        positive = labels > 0
        normaliser = mean_over_processes(positive.sum().to(logits.dtype)).clamp(min=1.0)
        loss_cls = self.cls_loss_func(logits, labels.int()) / normaliser
        if not bool(positive.any()):
            zero = zero_loss_through(regression, iou_logits)
            return loss_cls, zero, zero

        pred_boxes = self.box_coder.decode(regression[positive], flat_anchors[positive])
        target_boxes = gt_boxes[positive]
        loss_reg = box_overlap_loss(pred_boxes, target_boxes, self.reg_loss_type).sum()
        loss_reg = loss_reg / normaliser * self.reg_loss_weight
        iou_target, _ = aligned_iou_and_giou(pred_boxes.detach(), target_boxes)
        loss_iou = F.binary_cross_entropy_with_logits(iou_logits[positive], iou_target, reduction="sum")
        loss_iou = loss_iou / normaliser * self.iou_loss_weight
        return loss_cls, loss_reg, loss_iou


def make_paa_loss_evaluator(cfg, box_coder):
    return PAALossComputation(cfg.MODEL.PAA, cfg.MODEL.SAMPLING_FREE.ONE_STAGE.CLS_LOSS, box_coder)
