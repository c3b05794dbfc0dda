"""Overlap of aligned box pairs and the overlap-based regression losses of ATSS and PAA.

Boxes are ``[N, 4]`` in (x1, y1, x2, y2), continuous coordinates (width = x2 - x1, no +1).
"""
import torch

REG_LOSS_TYPES = ("iou", "giou")


def aligned_iou_and_giou(boxes_a, boxes_b, eps=1e-7):
    """IoU and generalised IoU of row i of ``boxes_a`` with row i of ``boxes_b``."""
    area_a = (boxes_a[:, 2] - boxes_a[:, 0]).clamp(min=0) * (boxes_a[:, 3] - boxes_a[:, 1]).clamp(min=0)
    area_b = (boxes_b[:, 2] - boxes_b[:, 0]).clamp(min=0) * (boxes_b[:, 3] - boxes_b[:, 1]).clamp(min=0)

    inter_top_left = torch.max(boxes_a[:, :2], boxes_b[:, :2])
    inter_bottom_right = torch.min(boxes_a[:, 2:], boxes_b[:, 2:])
    inter_wh = (inter_bottom_right - inter_top_left).clamp(min=0)
    intersection = inter_wh[:, 0] * inter_wh[:, 1]
    union = area_a + area_b - intersection
    iou = intersection / union.clamp(min=eps)

    hull_top_left = torch.min(boxes_a[:, :2], boxes_b[:, :2])
    hull_bottom_right = torch.max(boxes_a[:, 2:], boxes_b[:, 2:])
    hull_wh = (hull_bottom_right - hull_top_left).clamp(min=0)
    hull_area = hull_wh[:, 0] * hull_wh[:, 1]
    giou = iou - (hull_area - union) / hull_area.clamp(min=eps)
    return iou, giou


def box_overlap_loss(pred_boxes, target_boxes, kind):
    """Per-pair regression loss: ``giou`` is 1 - GIoU, ``iou`` is -log(IoU) (as UnitBox / FCOS)."""
    iou, giou = aligned_iou_and_giou(pred_boxes, target_boxes)
    if kind == "giou":
        return 1.0 - giou
    if kind == "iou":
        return -torch.log(iou.clamp(min=1e-6))
    raise ValueError(f"box overlap loss: unknown kind {kind!r} (REG_LOSS_TYPE); expected one of {REG_LOSS_TYPES}")
