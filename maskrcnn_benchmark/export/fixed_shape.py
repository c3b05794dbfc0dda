"""Box selection with sizes fixed at export time: masks instead of removals.

The detectors' post-processors drop boxes (empty after clipping, below a score, suppressed by
NMS), so their tensors' sizes depend on the data. Here every step keeps all rows and carries a
``valid`` mask; a "keep the best k" step is a stable sort of the scores with the invalid rows
last, which gives the rows the eager code keeps, in its order (decreasing score, ties by index).
"""
import torch

from maskrcnn_benchmark.structures.bounding_box import BoxList

from .ops import batched_nms_keep, nms_keep


def clipped_and_valid(boxes, image_size, min_size):
    """``boxes`` (K x 4 xyxy) clipped to ``image_size`` (width, height), and which of them the
    post-processors keep: with area left after clipping and both sides at least ``min_size``.
    The clipping and the side lengths are BoxList's, so they follow the project's box convention."""
    boxlist = BoxList(boxes, image_size, mode="xyxy").clip_to_image(remove_empty=False)
    clipped = boxlist.bbox
    nonempty = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    big_enough = (boxlist.convert("xywh").bbox[:, 2:] >= min_size).all(dim=1)
    return clipped, nonempty & big_enough


def best_valid(scores, valid, count, *tensors):
    """The ``count`` highest-scoring valid rows (all rows when ``count`` <= 0 or larger than
    their number), sorted by decreasing score, ties by index; rows past the valid ones are invalid.
    Returns ``(scores, valid, *tensors)`` at those rows."""
    masked = torch.where(valid, scores, torch.full_like(scores, float("-inf")))
    order = torch.sort(masked, descending=True, stable=True).indices
    if 0 < count < order.numel():
        order = order[:count]
    return (scores[order], valid[order], *(tensor[order] for tensor in tensors))


def convention_nms_keep(boxes, scores, valid, iou_threshold, convention, suppresses_ties=None, categories=None):
    """The keep mask of the eager post-processors' NMS in the box ``convention`` (its threshold and
    tie rule, ``BoxConvention.nms_arguments``), within each of ``categories`` when given."""
    threshold, legacy = convention.nms_arguments(iou_threshold, suppresses_ties)
    if categories is None:
        return nms_keep(boxes, scores, valid, threshold, legacy)
    return batched_nms_keep(boxes, scores, valid, categories, threshold, legacy)


def padded_detections(boxes, scores, labels, valid):
    """Rows that are not detections become zeros (label 0, the background, marks them)."""
    zero = torch.zeros_like
    return (
        torch.where(valid[:, None], boxes, zero(boxes)),
        torch.where(valid, scores, zero(scores)),
        torch.where(valid, labels, zero(labels)),
    )
