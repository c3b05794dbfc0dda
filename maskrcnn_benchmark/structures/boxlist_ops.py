"""Operations on BoxLists: non-maximum suppression, IoU, filtering and concatenation.

Widths, areas, IoU and the NMS rule are those of the box convention (``box_convention.py``) each
function is given, by default maskrcnn-benchmark's, as its functions of the same names.
"""
import torch

from .bounding_box import BoxList
from .box_convention import DEFAULT_BOX_CONVENTION, box_convention


def _nms(boxes, scores, iou_threshold, convention, suppresses_ties=None, categories=None):
    # Imported on use: the layers package wraps the compiled extension, and the structures must
    # stay importable (for data loading, tests, tools) without pulling it in.
    from maskrcnn_benchmark.layers.nms import batched_nms, nms

    threshold, legacy = convention.nms_arguments(iou_threshold, suppresses_ties)
    if categories is None:
        return nms(boxes, scores, threshold, legacy=legacy)
    return batched_nms(boxes, scores, categories, threshold, legacy=legacy)


def boxlist_nms(boxlist, nms_thresh, max_proposals=-1, score_field="scores", convention=DEFAULT_BOX_CONVENTION):
    """Class-agnostic NMS over a BoxList, ranked by the field ``score_field``.

    Returns the kept boxes sorted by decreasing score, at most ``max_proposals`` of them when
    that is positive. A non-positive ``nms_thresh`` switches suppression off.
    """
    if nms_thresh <= 0:
        return boxlist
    mode = boxlist.mode
    boxlist = boxlist.convert("xyxy", convention)
    keep = _nms(boxlist.bbox, boxlist.get_field(score_field), nms_thresh, box_convention(convention))
    if max_proposals > 0:
        keep = keep[:max_proposals]
    return boxlist[keep].convert(mode, convention)


def boxlist_ml_nms(boxlist, nms_thresh, max_proposals=-1, score_field="scores", label_field="labels",
                   convention=DEFAULT_BOX_CONVENTION, suppresses_ties=False):
    """Per-class NMS: boxes only suppress boxes with the same value of ``label_field``
    (``layers.batched_nms``: with maskrcnn-benchmark's convention one pass per class, as its code
    does). A box whose IoU equals the threshold is kept unless ``suppresses_ties`` (the forks'
    ``ml_nms`` kernel, which only exists for CUDA, compares with ``>``; None: the convention's rule).
    """
    if nms_thresh <= 0 or len(boxlist) == 0:
        return boxlist
    convention = box_convention(convention)
    mode = boxlist.mode
    boxlist = boxlist.convert("xyxy", convention)
    keep = _nms(boxlist.bbox, boxlist.get_field(score_field), nms_thresh, convention, suppresses_ties,
                categories=boxlist.get_field(label_field))
    if max_proposals > 0:
        keep = keep[:max_proposals]
    return boxlist[keep].convert(mode, convention)


def remove_small_boxes(boxlist, min_size, convention=DEFAULT_BOX_CONVENTION):
    """Keep the boxes whose width and height (in ``convention``) are both at least ``min_size``."""
    convention = box_convention(convention)
    boxes = boxlist.convert("xyxy", convention).bbox
    keep = (convention.widths(boxes) >= min_size) & (convention.heights(boxes) >= min_size)
    return boxlist[keep]


def remove_empty_boxes(boxlist, convention=DEFAULT_BOX_CONVENTION):
    """Keep the boxes that cover some area in ``convention`` (with inclusive pixel corners a box
    with ``x1 == x2`` covers a column of pixels and stays)."""
    convention = box_convention(convention)
    return boxlist[convention.nonempty(boxlist.convert("xyxy", convention).bbox)]


def boxlist_iou(boxlist1, boxlist2, convention=DEFAULT_BOX_CONVENTION):
    """The ``N x M`` matrix of IoUs between two BoxLists on the same image.

    A pair whose union is empty (two degenerate boxes) gets IoU 0 rather than NaN, so that
    matchers can take maxima over it.
    """
    if boxlist1.size != boxlist2.size:
        raise ValueError(
            f"boxlist_iou needs BoxLists on the same image, got sizes {boxlist1.size} and {boxlist2.size}"
        )
    convention = box_convention(convention)
    return convention.pairwise_iou(boxlist1.convert("xyxy", convention).bbox, boxlist2.convert("xyxy", convention).bbox)


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
