"""PAA training targets and losses (Kim & Lee, ECCV 2020).

Assignment, per image and without gradient: each box's candidate anchors (``candidates.py``) are
scored by the loss they would get as its positives, i.e. classification loss (the stage's soft
strategy towards the box's class, summed over classes) + REG_LOSS_WEIGHT x box loss of the decoded
prediction. A two-Gaussian mixture over those scores splits them (``gaussian_mixture.py``); the
selected candidates are positives, every other anchor is background. The three steps (candidate
selection, mixture split, box loss) are separate functions given to PAALossComputation, so each
can be replaced on its own.

Losses, each divided by the number of positives (at least 1, averaged over processes):
classification over the anchors the hard strategy trains ("all": every anchor); REG_LOSS_WEIGHT x
box loss (REG_LOSS_TYPE, "giou" or "iou") over positives; IOU_LOSS_WEIGHT x BCE of the IoU branch
towards the IoU of the decoded prediction with its box. A batch without any positive gives a finite
classification loss and zero (but differentiable) box and IoU losses.
"""
import torch
import torch.nn.functional as F

from maskrcnn_benchmark.modeling.dense_heads.box_losses import (
    aligned_iou_and_giou,
    box_overlap_loss,
    check_box_loss_kind,
    zero_loss_through,
)
from maskrcnn_benchmark.modeling.dense_heads.classification import dense_classification_loss
from maskrcnn_benchmark.modeling.dense_heads.layout import flatten_levels
from maskrcnn_benchmark.modeling.rpn.paa.candidates import select_paa_candidates
from maskrcnn_benchmark.modeling.rpn.paa.gaussian_mixture import split_by_mixture
from maskrcnn_benchmark.modeling.sample_strategy import AllSamples


class PAALossComputation:
    """``cls_loss_func``: the head's soft strategy (its ``per_sample`` also scores the candidates,
    through ``candidate_loss``); ``select_candidates(anchors_per_level, gt_boxes, iou_threshold,
    topk)``, ``split(scores) -> positive mask`` and ``box_loss(pred, target, kind)`` are the three
    replaceable steps."""

    def __init__(self, cls_loss_func, box_coder, iou_threshold=0.1, topk=9, reg_loss_type="giou",
                 reg_loss_weight=1.3, iou_loss_weight=0.5, hard_strategy=None,
                 select_candidates=select_paa_candidates, split=split_by_mixture, box_loss=box_overlap_loss):
        check_box_loss_kind(reg_loss_type, "MODEL.PAA.REG_LOSS_TYPE")
        self.cls_loss_func = self.candidate_loss = cls_loss_func
        self.hard_strategy = hard_strategy or AllSamples()
        self.box_coder = box_coder
        self.iou_threshold, self.topk = iou_threshold, topk
        self.reg_loss_type, self.reg_loss_weight, self.iou_loss_weight = reg_loss_type, reg_loss_weight, iou_loss_weight
        # the three replaceable steps
        self.select_candidates, self.split, self.box_loss = select_candidates, split, box_loss

    def candidates(self, anchors_per_level, target):
        gt_boxes = target.convert("xyxy").bbox.to(anchors_per_level[0].dtype)
        return self.select_candidates(anchors_per_level, gt_boxes, self.iou_threshold, self.topk)

    def candidate_scores(self, logits, regression, anchors, gt_boxes, gt_labels):
        """The loss each candidate would get as a positive of its box (lower is better)."""
        pred_boxes = self.box_coder.decode(regression.float(), anchors)
        return self.candidate_loss.per_sample(logits.float(), gt_labels) + self.reg_loss_weight * self.box_loss(
            pred_boxes, gt_boxes, self.reg_loss_type
        )

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
        scores = self.candidate_scores(
            logits[anchor_idx], regression[anchor_idx], anchors[anchor_idx], gt_boxes[gt_idx], gt_labels[gt_idx]
        )
        positive = torch.zeros_like(anchor_idx, dtype=torch.bool)
        for box in torch.unique(gt_idx):
            members = (gt_idx == box).nonzero(as_tuple=True)[0]
            positive[members] = self.split(scores[members])
        labels[anchor_idx[positive]] = gt_labels[gt_idx[positive]]
        matched_boxes[anchor_idx[positive]] = gt_boxes[gt_idx[positive]]
        return labels, matched_boxes

    def __call__(self, box_cls, box_regression, iou_pred, targets, anchors_per_level):
        """Per-level head outputs and the anchors of each level (the same for every image).
        Returns ``(loss_cls, loss_reg, loss_iou)``."""
        num_classes = box_cls[0].shape[1] // (box_regression[0].shape[1] // 4)
        logits = flatten_levels(box_cls, num_classes)  # [N, R, C]
        regression = flatten_levels(box_regression, 4)
        iou_logits = flatten_levels(iou_pred, 1).reshape(-1)

        labels, gt_boxes = (torch.stack(t) for t in zip(*(
            self.assign(anchors_per_level, target, logits[image].detach(), regression[image].detach())
            for image, target in enumerate(targets)
        )))
        loss_cls, normaliser = dense_classification_loss(self.hard_strategy, self.cls_loss_func, logits, labels)
        regression = regression.reshape(-1, 4)
        positive = labels.reshape(-1) > 0
        if not bool(positive.any()):
            zero = zero_loss_through(regression, iou_logits)
            return loss_cls, zero, zero

        anchors = torch.cat(list(anchors_per_level), dim=0).repeat(len(targets), 1)[positive]
        pred_boxes = self.box_coder.decode(regression[positive], anchors)
        target_boxes = gt_boxes.reshape(-1, 4)[positive]
        loss_reg = self.box_loss(pred_boxes, target_boxes, self.reg_loss_type).sum()
        loss_reg = loss_reg / normaliser * self.reg_loss_weight
        iou_target, _ = aligned_iou_and_giou(pred_boxes.detach(), target_boxes)
        loss_iou = F.binary_cross_entropy_with_logits(iou_logits[positive], iou_target, reduction="sum")
        loss_iou = loss_iou / normaliser * self.iou_loss_weight
        return loss_cls, loss_reg, loss_iou
