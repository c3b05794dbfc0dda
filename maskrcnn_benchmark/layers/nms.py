"""Non-maximum suppression: greedy, by decreasing score, IoU with widths x2 - x1."""
import torch

from ._ops import ops


def nms(boxes, scores, iou_threshold):
    """Indices (int64) of the boxes kept, sorted by decreasing score.

    ``boxes`` is N x 4 (x1, y1, x2, y2); a box is dropped when its IoU with a higher-scoring kept
    box exceeds ``iou_threshold``.
    """
    return ops.nms(boxes, scores, float(iou_threshold))


def batched_nms(boxes, scores, idxs, iou_threshold):
    """NMS applied independently within each category ``idxs`` (N ints), in one call.

    Each category's boxes are shifted by a category-specific offset larger than the span of all
    coordinates, so boxes of different categories never overlap and a single NMS pass equals
    one pass per category. Returns kept indices sorted by decreasing score.
    """
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.long, device=boxes.device)
    if idxs.shape != scores.shape:
        raise ValueError(f"batched_nms: idxs has shape {tuple(idxs.shape)} but scores has shape "
                         f"{tuple(scores.shape)}")
    span = boxes.max() - boxes.min() + 1
    offsets = idxs.to(boxes.dtype) * span
    return nms(boxes + offsets[:, None], scores, iou_threshold)
