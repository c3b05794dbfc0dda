"""Overlap of aligned box pairs, and the IoU / GIoU box losses of FCOS, ATSS, PAA.

Boxes are ``[N, 4]`` (x1, y1, x2, y2), continuous coordinates (width = x2 - x1, no +1). Heads that
regress distances (l, t, r, b) from a point use ``boxes_around_origin``: the overlap of two such
boxes does not depend on where the point is.
"""
import torch

BOX_LOSS_KINDS = ("iou", "giou")


def boxes_around_origin(ltrb):
    """Distances (l, t, r, b) from a point -> the box (-l, -t, r, b) around the origin."""
    return torch.cat((-ltrb[:, :2], ltrb[:, 2:]), dim=1)


def aligned_iou_and_giou(boxes_a, boxes_b, smooth=0.0, eps=1e-7):
    """IoU and generalised IoU of row i of ``boxes_a`` with row i of ``boxes_b``.

    ``smooth`` is added to intersection and union, (I + s) / (U + s): FCOS's s = 1 keeps a gradient
    for degenerate predictions. GIoU = IoU - (hull - U) / hull, hull the smallest enclosing box.
    """
    area_a = (boxes_a[:, 2] - boxes_a[:, 0]).clamp(min=0) * (boxes_a[:, 3] - boxes_a[:, 1]).clamp(min=0)
    area_b = (boxes_b[:, 2] - boxes_b[:, 0]).clamp(min=0) * (boxes_b[:, 3] - boxes_b[:, 1]).clamp(min=0)

    inter_top_left = torch.max(boxes_a[:, :2], boxes_b[:, :2])
    inter_bottom_right = torch.min(boxes_a[:, 2:], boxes_b[:, 2:])
    inter_wh = (inter_bottom_right - inter_top_left).clamp(min=0)
    intersection = inter_wh[:, 0] * inter_wh[:, 1]
    union = area_a + area_b - intersection
    iou = (intersection + smooth) / (union + smooth).clamp(min=eps)

    hull_top_left = torch.min(boxes_a[:, :2], boxes_b[:, :2])
    hull_bottom_right = torch.max(boxes_a[:, 2:], boxes_b[:, 2:])
    hull_wh = (hull_bottom_right - hull_top_left).clamp(min=0)
    hull_area = hull_wh[:, 0] * hull_wh[:, 1]
    giou = iou - (hull_area - union) / hull_area.clamp(min=eps)
    return iou, giou


def check_box_loss_kind(kind, key):
    """Fail at build time, naming the config ``key``, rather than at the first positive."""
    if kind not in BOX_LOSS_KINDS:
        raise ValueError(f"{key} must be one of {BOX_LOSS_KINDS}, got {kind!r}")


def box_overlap_loss(pred_boxes, target_boxes, kind, smooth=0.0):
    """Per-pair loss: ``giou`` is 1 - GIoU, ``iou`` is -log(IoU) (UnitBox / FCOS)."""
    check_box_loss_kind(kind, "box overlap loss kind")
    iou, giou = aligned_iou_and_giou(pred_boxes, target_boxes, smooth)
    if kind == "giou":
        return 1.0 - giou
    return -torch.log(iou.clamp(min=1e-6))


def zero_loss_through(*tensors):
    """A zero that still reaches every prediction, so a batch without positives back-propagates."""
    return sum(t.sum() * 0.0 for t in tensors)
