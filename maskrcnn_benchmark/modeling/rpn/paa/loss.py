"""PAA training targets and losses (Kim & Lee, ECCV 2020), as the paper and its public code
define them.

Assignment, per image and without gradient (``PAALossComputation.assign``):

1. the IoU pre-assignment of every anchor to a box (``candidates.iou_pre_assignment``);
2. each pre-assigned anchor's score, the loss it would get as that box's positive: its
   classification loss towards the box's class (the stage's soft strategy, summed over classes)
   PLUS its box loss (REG_LOSS_TYPE, of the decoded prediction; unweighted, REG_LOSS_WEIGHT only
   weighs the training loss);
3. per box and level, the ``topk`` pre-assigned anchors of lowest score are its candidates
   (``candidates.select_paa_candidates``);
4. a two-Gaussian mixture over each box's candidate scores decides its positives
   (``gaussian_mixture.split_by_mixture``); every other anchor is background (PAA ignores none).

Losses, with ``num_pos`` the positives averaged over processes (at least 1):
classification over the anchors the hard strategy trains ("all": every anchor) / num_pos;
box loss of the positives, each weighted by the IoU of its decoded prediction with its box
(detached), divided by the sum of those IoUs (averaged over processes) x REG_LOSS_WEIGHT;
IOU_LOSS_WEIGHT x BCE of the IoU branch towards that IoU / num_pos. A batch without any positive
gives a finite classification loss and zero (but differentiable) box and IoU losses.

The initial predictions of the network are constant (every logit at its bias, zero regressions,
so each prediction is its anchor): ``assign`` without predictions uses them. That is the
assignment PAA starts training with, and what the optimal bias counts.
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
from maskrcnn_benchmark.modeling.dense_heads.normalizer import mean_over_processes
from maskrcnn_benchmark.modeling.rpn.paa.candidates import iou_pre_assignment, select_paa_candidates
from maskrcnn_benchmark.modeling.rpn.paa.gaussian_mixture import split_by_mixture
from maskrcnn_benchmark.modeling.sample_strategy import AllSamples


def iou_weighted_box_loss(per_positive_loss, ious, num_pos):
    """Sum of the positives' box losses weighted by their prediction IoUs, over the IoU sum
    averaged across processes. Where a process's IoUs are all 0 its losses go unweighted (as in
    PAA's code); where every process's are, the divisor is the positive count ``num_pos``."""
    weights = ious if bool(ious.sum() > 0) else torch.ones_like(ious)
    iou_sum = mean_over_processes(ious.sum().detach())
    divisor = iou_sum if bool(iou_sum > 0) else num_pos
    return (per_positive_loss * weights).sum() / divisor


def rows_of_candidates(box_idx, values):
    """``values`` (one per candidate) as a ``[boxes, K]`` grid, one row per box, with its ``valid``
    mask and, per candidate, its ``(row, column)`` in the grid."""
    _, row = torch.unique(box_idx, return_inverse=True)
    sizes = torch.bincount(row)
    order = torch.argsort(row, stable=True)
    column = torch.empty_like(row)
    column[order] = torch.arange(row.numel(), device=row.device) - torch.repeat_interleave(sizes.cumsum(0) - sizes, sizes)
    grid = values.new_zeros(sizes.numel(), int(sizes.max()))
    valid = torch.zeros_like(grid, dtype=torch.bool)
    grid[row, column] = values
    valid[row, column] = True
    return grid, valid, (row, column)


class PAALossComputation:
    """``cls_loss_func``: the head's soft strategy; ``candidate_loss`` (the same, by default) scores
    the candidates through its ``per_sample``; ``num_classes``: the classifier's columns; ``split(scores, valid) -> positives`` and
    ``box_loss(pred, target, kind)`` can be replaced."""

    def __init__(self, cls_loss_func, box_coder, num_classes, iou_threshold=0.1, topk=9, reg_loss_type="giou",
                 reg_loss_weight=1.3, iou_loss_weight=0.5, hard_strategy=None, split=split_by_mixture,
                 box_loss=box_overlap_loss):
        check_box_loss_kind(reg_loss_type, "MODEL.PAA.REG_LOSS_TYPE")
        self.cls_loss_func = self.candidate_loss = cls_loss_func
        self.num_classes = num_classes
        self.hard_strategy = hard_strategy or AllSamples()
        self.box_coder = box_coder
        self.iou_threshold, self.topk = iou_threshold, topk
        self.reg_loss_type, self.reg_loss_weight, self.iou_loss_weight = reg_loss_type, reg_loss_weight, iou_loss_weight
        self.split, self.box_loss = split, box_loss

    def candidate_scores(self, logits, regression, anchors, gt_boxes, gt_labels):
        """The loss each anchor would get as the positive of ``gt_boxes`` / ``gt_labels`` (aligned
        rows): classification + box loss, lower is better."""
        pred_boxes = self.box_coder.decode(regression.float(), anchors)
        cls = self.candidate_loss.per_sample(logits.float(), gt_labels)
        return cls + self.box_loss(pred_boxes, gt_boxes, self.reg_loss_type)

    @torch.no_grad()
    def assign(self, anchors_per_level, target, logits=None, regression=None):
        """Labels (class or 0) and matched boxes of one image. ``logits`` ``[A, C]``, ``regression``
        ``[A, 4]``; without them, the network's initial constant predictions."""
        target = target.convert("xyxy")
        anchors = torch.cat(list(anchors_per_level), dim=0)
        labels = torch.zeros(anchors.shape[0], dtype=torch.long, device=anchors.device)
        matched_boxes = anchors.clone()
        gt_boxes = target.bbox.to(anchors.dtype)
        gt_labels = target.get_field("labels").to(device=anchors.device, dtype=torch.long)
        assigned = iou_pre_assignment(anchors, gt_boxes, self.iou_threshold, self.box_coder.convention)
        pre = (assigned >= 0).nonzero(as_tuple=True)[0]
        if pre.numel() == 0:
            return labels, matched_boxes
        if logits is None:
            logits = anchors.new_zeros(anchors.shape[0], self.num_classes)
        if regression is None:
            regression = anchors.new_zeros(anchors.shape[0], 4)

        scores = torch.full((anchors.shape[0],), float("inf"), dtype=torch.float32, device=anchors.device)
        scores[pre] = self.candidate_scores(
            logits[pre], regression[pre], anchors[pre], gt_boxes[assigned[pre]], gt_labels[assigned[pre]]
        ).float()
        anchor_idx, box_idx = select_paa_candidates(
            [len(level) for level in anchors_per_level], assigned, scores, gt_boxes.shape[0], self.topk
        )
        if anchor_idx.numel() == 0:
            return labels, matched_boxes
        grid, valid, cells = rows_of_candidates(box_idx, scores[anchor_idx])
        positive = self.split(grid, valid)[cells]
        chosen, owner = anchor_idx[positive], box_idx[positive]
        labels[chosen] = gt_labels[owner]
        matched_boxes[chosen] = gt_boxes[owner]
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
        loss_cls, num_pos = dense_classification_loss(self.hard_strategy, self.cls_loss_func, logits, labels)
        regression = regression.reshape(-1, 4)
        positive = labels.reshape(-1) > 0
        if not bool(positive.any()):
            zero = zero_loss_through(regression, iou_logits)
            return loss_cls, zero, zero

        anchors = torch.cat(list(anchors_per_level), dim=0).repeat(len(targets), 1)[positive]
        pred_boxes = self.box_coder.decode(regression[positive], anchors)
        target_boxes = gt_boxes.reshape(-1, 4)[positive]
        iou_target, _ = aligned_iou_and_giou(pred_boxes.detach(), target_boxes)
        per_positive = self.box_loss(pred_boxes, target_boxes, self.reg_loss_type)
        loss_reg = iou_weighted_box_loss(per_positive, iou_target, num_pos) * self.reg_loss_weight
        loss_iou = F.binary_cross_entropy_with_logits(iou_logits[positive], iou_target, reduction="sum")
        loss_iou = loss_iou / num_pos * self.iou_loss_weight
        return loss_cls, loss_reg, loss_iou
