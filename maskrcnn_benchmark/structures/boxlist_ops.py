"""Operations on BoxLists: non-maximum suppression, IoU, filtering and concatenation.

IoU and areas follow the project's box convention (width = x2 - x1, no +1; see bounding_box.py).
"""
import torch

from .bounding_box import BoxList


def _nms(boxes, scores, iou_threshold):
    # Imported on use: the layers package wraps the compiled extension, and the structures must
    # stay importable (for data loading, tests, tools) without pulling it in.
    from maskrcnn_benchmark.layers import nms

    return nms(boxes, scores, iou_threshold)


def boxlist_nms(boxlist, nms_thresh, max_proposals=-1, score_field="scores"):
    """Class-agnostic NMS over a BoxList, ranked by the field ``score_field``.

    Returns the kept boxes sorted by decreasing score, at most ``max_proposals`` of them when
    that is positive. A non-positive ``nms_thresh`` switches suppression off.
    """
    if nms_thresh <= 0:
        return boxlist
    mode = boxlist.mode
    boxlist = boxlist.convert("xyxy")
    keep = _nms(boxlist.bbox, boxlist.get_field(score_field), nms_thresh)
    if max_proposals > 0:
        keep = keep[:max_proposals]
    return boxlist[keep].convert(mode)


def boxlist_ml_nms(boxlist, nms_thresh, max_proposals=-1, score_field="scores", label_field="labels"):
    """Per-class NMS: boxes only suppress boxes with the same value of ``label_field``.

    All classes go through one NMS call: each class's boxes are shifted by a class-specific
    offset larger than any coordinate, so boxes of different classes never overlap.
    """
    if nms_thresh <= 0 or len(boxlist) == 0:
        return boxlist
    mode = boxlist.mode
    boxlist = boxlist.convert("xyxy")
    boxes = boxlist.bbox
    labels = boxlist.get_field(label_field)
    offsets = labels.to(boxes.dtype) * (boxes.max() - boxes.min() + 1)
    shifted = boxes - boxes.min() + offsets[:, None]
    keep = _nms(shifted, boxlist.get_field(score_field), nms_thresh)
    if max_proposals > 0:
        keep = keep[:max_proposals]
    return boxlist[keep].convert(mode)


def remove_small_boxes(boxlist, min_size):
    """Keep the boxes whose width and height are both at least ``min_size``."""
    widths_heights = boxlist.convert("xywh").bbox[:, 2:]
    keep = (widths_heights >= min_size).all(dim=1)
    return boxlist[keep]


def boxlist_iou(boxlist1, boxlist2):
    """The ``N x M`` matrix of IoUs between two BoxLists on the same image.

    A pair whose union is empty (two degenerate boxes) gets IoU 0 rather than NaN, so that
    matchers can take maxima over it.
    """
    if boxlist1.size != boxlist2.size:
        raise ValueError(
            f"boxlist_iou needs BoxLists on the same image, got sizes {boxlist1.size} and {boxlist2.size}"
        )
    boxes1 = boxlist1.convert("xyxy").bbox
    boxes2 = boxlist2.convert("xyxy").bbox
    area1 = boxlist1.area()
    area2 = boxlist2.area()

    top_left = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])
    bottom_right = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])
    overlap_wh = (bottom_right - top_left).clamp(min=0)
    intersection = overlap_wh[..., 0] * overlap_wh[..., 1]
    union = area1[:, None] + area2[None, :] - intersection
    return torch.where(union > 0, intersection / union.clamp(min=torch.finfo(union.dtype).tiny), 0.0)


def _cat_field(values, field):
    first = values[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(values, dim=0)
    if isinstance(first, (list, tuple)):
        return type(first)(item for value in values for item in value)
    if hasattr(type(first), "cat"):
        return type(first).cat(values)
    raise TypeError(f"cat_boxlist cannot concatenate field {field!r} of type {type(first).__name__}")


def cat_boxlist(bboxes):
    """Concatenate BoxLists of the same image, mode and fields into one (fields included)."""
    if not isinstance(bboxes, (list, tuple)) or len(bboxes) == 0:
        raise ValueError("cat_boxlist needs a non-empty list of BoxLists")
    for index, boxlist in enumerate(bboxes):
        if not isinstance(boxlist, BoxList):
            raise TypeError(f"cat_boxlist: item {index} is a {type(boxlist).__name__}, not a BoxList")
    first = bboxes[0]
    size, mode, fields = first.size, first.mode, set(first.fields())
    for index, boxlist in enumerate(bboxes[1:], start=1):
        if boxlist.size != size:
            raise ValueError(f"cat_boxlist: item {index} has image size {boxlist.size}, item 0 has {size}")
        if boxlist.mode != mode:
            raise ValueError(f"cat_boxlist: item {index} is in mode {boxlist.mode!r}, item 0 in {mode!r}")
        if set(boxlist.fields()) != fields:
            raise ValueError(
                f"cat_boxlist: item {index} has fields {sorted(boxlist.fields())}, item 0 has {sorted(fields)}"
            )
    combined = BoxList(torch.cat([boxlist.bbox for boxlist in bboxes], dim=0), size, mode)
    for field in first.fields():
        combined.add_field(field, _cat_field([boxlist.get_field(field) for boxlist in bboxes], field))
    return combined
