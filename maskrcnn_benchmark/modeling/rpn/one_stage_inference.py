"""The detection pipeline shared by the one-stage post-processors (RetinaNet, FCOS, ATSS, PAA).

Per level and image: the (position, class) pairs whose class probability exceeds the score
threshold are candidates, the ``pre_nms_top_n`` best by the head's own score are decoded into
boxes, clipped to the image and filtered by ``min_size``. Per image, over all levels: class-wise
NMS, then the ``max_detections`` highest-scoring boxes.

A head brings only what is its own: how its maps are flattened, its score formula and how it
decodes a position (an anchor or a point) into a box.
"""
from torch import nn

from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.boxlist_ops import boxlist_ml_nms, cat_boxlist, remove_small_boxes


def candidates_above_threshold(class_probs, pre_nms_thresh):
    """One image and level. ``class_probs``: ``P x C`` probabilities of P positions (anchors or
    points). Returns the ``position_idx``, ``class_idx`` (0-based) and class probability of every
    (position, class) pair above the threshold."""
    position_idx, class_idx = (class_probs > pre_nms_thresh).nonzero(as_tuple=True)
    return position_idx, class_idx, class_probs[position_idx, class_idx]


def keep_top_candidates(scores, pre_nms_top_n, *indices):
    """The ``pre_nms_top_n`` highest ``scores`` (in no particular order) and, for each tensor of
    ``indices``, its entries at the same places."""
    top_n = min(pre_nms_top_n, scores.numel())
    scores, top = scores.topk(top_n, sorted=False)
    return (scores, *(index[top] for index in indices))


def detections_boxlist(boxes, image_size, class_idx, scores, min_size):
    """Decoded candidates as a BoxList (labels 1-based, background being 0), clipped to
    ``image_size`` (width, height), without the boxes smaller than ``min_size``."""
    boxlist = BoxList(boxes, image_size, mode="xyxy")
    boxlist.add_field("labels", class_idx + 1)
    boxlist.add_field("scores", scores)
    boxlist = boxlist.clip_to_image(remove_empty=False)
    return remove_small_boxes(boxlist, min_size)


def join_levels(per_level):
    """Per level lists of per-image BoxLists -> one BoxList per image with all its levels."""
    return [cat_boxlist(list(levels)) for levels in zip(*per_level)]


def keep_top_detections(boxlist, nms_thresh, max_detections):
    """Class-wise NMS, then the ``max_detections`` highest-scoring boxes of the image."""
    return boxlist_ml_nms(boxlist, nms_thresh, max_proposals=max_detections)


def postprocessor_settings(config, head_cfg):
    """The pipeline's settings for a one-stage head whose config section is ``head_cfg``
    (``MODEL.RETINANET``, ``FCOS``, ``ATSS`` or ``PAA``)."""
    return dict(
        pre_nms_thresh=head_cfg.INFERENCE_TH,
        pre_nms_top_n=head_cfg.PRE_NMS_TOP_N,
        nms_thresh=head_cfg.NMS_TH,
        fpn_post_nms_top_n=config.TEST.DETECTIONS_PER_IMG,
        min_size=0,
        num_classes=head_cfg.NUM_CLASSES,
    )


class OneStagePostProcessor(nn.Module):
    """The thresholds of the pipeline and its last, all-levels step; subclasses implement
    ``forward`` for their own outputs with the functions above."""

    def __init__(self, pre_nms_thresh, pre_nms_top_n, nms_thresh, fpn_post_nms_top_n, min_size, num_classes):
        super().__init__()
        self.pre_nms_thresh = pre_nms_thresh
        self.pre_nms_top_n = pre_nms_top_n
        self.nms_thresh = nms_thresh
        self.fpn_post_nms_top_n = fpn_post_nms_top_n
        self.min_size = min_size
        self.num_classes = num_classes

    def select_over_all_levels(self, boxlists):
        return [keep_top_detections(b, self.nms_thresh, self.fpn_post_nms_top_n) for b in boxlists]
