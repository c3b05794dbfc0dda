"""The one post-processor of the dense heads, parameterised by a score and a decode function.

Per level and image: the (position, class) pairs whose class probability exceeds the threshold are
candidates; the ``pre_nms_top_n`` best by the head's score are decoded into boxes, clipped to the
image; boxes left without area (decoded outside the image) and boxes smaller than ``min_size`` are
dropped. Per image, over all levels: class-wise NMS, then the ``fpn_post_nms_top_n`` best boxes,
then the head's optional ``refine`` step (PAA's score voting). Clipping, widths and NMS are those
of the box ``convention``; NMS keeps a box whose IoU equals the threshold (the FCOS / ATSS / PAA
code bases' multi-class NMS) unless ``nms_suppresses_ties`` (RetinaNet passes its convention's rule).

Dropping empty boxes before NMS matters: two identical empty boxes have IoU 0 / 0 = NaN, which
suppresses nothing, so NMS would keep every copy of them.

A head brings only what is its own:
- ``score(class_probs, quality_probs)``: the ranking (and reported) score of each candidate from
  its class probability and, for heads with a quality branch, that position's quality
  probability (None otherwise);
- ``decode(regression, positions)``: boxes from the regression values and the positions (anchors
  ``[K, 4]`` or points ``[K, 2]``) of the candidates.
"""
import torch
from torch import nn

from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.box_convention import DEFAULT_BOX_CONVENTION, box_convention
from maskrcnn_benchmark.structures.boxlist_ops import boxlist_ml_nms, cat_boxlist, remove_empty_boxes, remove_small_boxes

from .layout import flatten_level


def class_probability(class_probs, quality_probs):
    """RetinaNet's score: the class probability itself."""
    return class_probs


def geometric_mean_with_quality(class_probs, quality_probs):
    """ATSS's and PAA's score: sqrt(class probability x quality probability)."""
    return torch.sqrt(class_probs * quality_probs)


def candidates_above_threshold(class_probs, pre_nms_thresh):
    """One image and level. ``class_probs``: ``P x C`` probabilities of P positions. Returns the
    ``position_idx``, ``class_idx`` (0-based) and class probability of every (position, class)
    pair above the threshold."""
    position_idx, class_idx = (class_probs > pre_nms_thresh).nonzero(as_tuple=True)
    return position_idx, class_idx, class_probs[position_idx, class_idx]


def keep_top_candidates(scores, pre_nms_top_n, *indices):
    """The ``pre_nms_top_n`` highest ``scores`` (in no particular order) and, for each tensor of
    ``indices``, its entries at the same places."""
    top_n = min(pre_nms_top_n, scores.numel())
    scores, top = scores.topk(top_n, sorted=False)
    return (scores, *(index[top] for index in indices))


def detections_boxlist(boxes, image_size, class_idx, scores, min_size, convention=DEFAULT_BOX_CONVENTION):
    """Decoded candidates as a BoxList (labels 1-based, background being 0), clipped to
    ``image_size`` (width, height), without the empty boxes and those smaller than ``min_size``."""
    boxlist = BoxList(boxes, image_size, mode="xyxy")
    boxlist.add_field("labels", class_idx + 1)
    boxlist.add_field("scores", scores)
    boxlist = remove_empty_boxes(boxlist.clip_to_image(remove_empty=False, convention=convention), convention)
    return remove_small_boxes(boxlist, min_size, convention)


def keep_top_detections(boxlist, nms_thresh, max_detections, convention=DEFAULT_BOX_CONVENTION,
                        suppresses_ties=False):
    """Class-wise NMS, then the ``max_detections`` highest-scoring boxes of the image."""
    return boxlist_ml_nms(boxlist, nms_thresh, max_proposals=max_detections, convention=convention,
                          suppresses_ties=suppresses_ties)


class DensePostProcessor(nn.Module):
    """Detections from the per-level maps of a dense head (see the module docstring)."""

    def __init__(self, decode, score=class_probability, pre_nms_thresh=0.05, pre_nms_top_n=1000,
                 nms_thresh=0.5, fpn_post_nms_top_n=100, min_size=0, num_classes=81, refine=None,
                 convention=DEFAULT_BOX_CONVENTION, nms_suppresses_ties=False):
        super().__init__()
        self.decode, self.score, self.refine = decode, score, refine
        self.pre_nms_thresh, self.pre_nms_top_n, self.nms_thresh = pre_nms_thresh, pre_nms_top_n, nms_thresh
        self.fpn_post_nms_top_n, self.min_size, self.num_classes = fpn_post_nms_top_n, min_size, num_classes
        self.convention, self.nms_suppresses_ties = box_convention(convention), nms_suppresses_ties

    @staticmethod
    def settings_from(head_cfg, test_cfg):
        """The pipeline's settings for a head config group (MODEL.RETINANET, FCOS, ATSS, PAA, ...)."""
        return dict(
            pre_nms_thresh=head_cfg.INFERENCE_TH,
            pre_nms_top_n=head_cfg.PRE_NMS_TOP_N,
            nms_thresh=head_cfg.NMS_TH,
            fpn_post_nms_top_n=test_cfg.DETECTIONS_PER_IMG,
            min_size=0,
            num_classes=head_cfg.NUM_CLASSES,
        )

    def detections_for_level(self, positions, box_cls, box_regression, quality, image_sizes):
        """One level: ``positions`` ``[P, D]`` shared by the images; ``box_cls`` ``N x A*C x H x W``,
        ``box_regression`` ``N x A*4 x H x W``, ``quality`` ``N x A x H x W`` or None;
        ``image_sizes`` (height, width) per image. Returns one BoxList per image."""
        num_anchors = box_regression.shape[1] // 4
        num_classes = box_cls.shape[1] // num_anchors
        class_probs = flatten_level(box_cls, num_classes).sigmoid()
        regression = flatten_level(box_regression, 4)
        quality_probs = None if quality is None else flatten_level(quality, 1).sigmoid()[..., 0]

        results = []
        for image, (height, width) in enumerate(image_sizes):
            position_idx, class_idx, probs = candidates_above_threshold(class_probs[image], self.pre_nms_thresh)
            qualities = None if quality_probs is None else quality_probs[image][position_idx]
            scores = self.score(probs, qualities)
            scores, position_idx, class_idx = keep_top_candidates(scores, self.pre_nms_top_n, position_idx, class_idx)
            boxes = self.decode(regression[image][position_idx], positions[position_idx])
            results.append(detections_boxlist(boxes, (int(width), int(height)), class_idx, scores, self.min_size,
                                              self.convention))
        return results

    def forward(self, positions, box_cls, box_regression, quality, image_sizes):
        """``positions``, ``box_cls``, ``box_regression``, ``quality`` (or None): one entry per
        level. Returns one BoxList per image with its ``scores`` and ``labels``."""
        quality = quality if quality is not None else [None] * len(box_cls)
        per_level = [
            self.detections_for_level(p, c, r, q, image_sizes)
            for p, c, r, q in zip(positions, box_cls, box_regression, quality)
        ]
        return self.select_over_all_levels([cat_boxlist(list(levels)) for levels in zip(*per_level)])

    def select_over_all_levels(self, boxlists):
        results = []
        for candidates in boxlists:
            kept = keep_top_detections(candidates, self.nms_thresh, self.fpn_post_nms_top_n, self.convention,
                                       self.nms_suppresses_ties)
            results.append(self.refine(kept, candidates) if self.refine is not None else kept)
        return results
