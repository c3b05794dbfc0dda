"""Non-maximum suppression: greedy, by decreasing score.

Two box conventions (the kernels' nms_overlap.h holds the rule):

- default (torchvision, detectron2): widths ``x2 - x1``, a box is dropped when its IoU with a
  higher-scoring kept box is above ``iou_threshold``;
- ``legacy=True`` (maskrcnn-benchmark, Detectron): widths ``x2 - x1 + 1``, a box is dropped when
  its IoU is at or above ``iou_threshold``.

Boxes whose union is empty (two zero-area boxes, identical or not) have IoU 0 in both: they never
suppress each other, as in ``boxlist_iou`` and in torchvision's nms.
"""
import math

import torch

from ._ops import ops


def nms(boxes, scores, iou_threshold, legacy=False):
    """Indices (int64) of the boxes kept, sorted by decreasing score.

    ``boxes`` is N x 4 (x1, y1, x2, y2), ``scores`` N values of the same dtype and device.
    """
    iou_threshold = float(iou_threshold)
    if math.isnan(iou_threshold):
        raise ValueError("nms: iou_threshold is NaN")
    return ops.nms(boxes, scores, iou_threshold, bool(legacy))


def batched_nms(boxes, scores, idxs, iou_threshold, legacy=False):
    """NMS applied independently within each category ``idxs`` (N ints).

    Returns kept indices sorted by decreasing score (ties by index). Each category's boxes are
    shifted by a category-specific offset larger than the span of all coordinates, so boxes of
    different categories never overlap and one NMS pass equals one pass per category. That holds
    only while disjoint boxes (IoU 0) survive, so a threshold at which IoU 0 suppresses (< 0) runs
    one pass per category instead. ``legacy`` always runs one pass per category in the boxes' own
    precision, as maskrcnn-benchmark's per-class loop does: its IoUs then round exactly as there
    (a shifted pass computes them from other numbers, and a float32 IoU near the threshold can
    fall on the other side).
    """
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.long, device=boxes.device)
    if idxs.shape != scores.shape:
        raise ValueError(f"batched_nms: idxs has shape {tuple(idxs.shape)} but scores has shape "
                         f"{tuple(scores.shape)}")
    iou_threshold = float(iou_threshold)
    if legacy or iou_threshold < 0:
        return _nms_per_category(boxes, scores, idxs, iou_threshold, legacy)
    # In float64: float32 coordinates shifted by thousands of pixels would round the IoUs (by ~1e-4
    # at an offset of 1e5) and change decisions near the threshold against a per-category pass.
    boxes = boxes.double()
    offsets = idxs.to(boxes.dtype) * (boxes.max() - boxes.min() + 1)
    return nms(boxes + offsets[:, None], scores.double(), iou_threshold)


def _nms_per_category(boxes, scores, idxs, iou_threshold, legacy):
    kept = []
    for category in torch.unique(idxs):
        members = torch.nonzero(idxs == category).flatten()
        kept.append(members[nms(boxes[members], scores[members], iou_threshold, legacy)])
    kept = torch.sort(torch.cat(kept)).values  # index order, so that equal scores stay by index
    return kept[torch.sort(scores[kept], descending=True, stable=True).indices]
