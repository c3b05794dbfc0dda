"""ATSS / PAA inference: per level, class probabilities above ``INFERENCE_TH`` (at most
``PRE_NMS_TOP_N``), ranked by sqrt(class probability x quality probability) where the quality is the
centre-ness (ATSS) or the predicted IoU (PAA); decoded boxes, then class-wise NMS over all levels
and the ``TEST.DETECTIONS_PER_IMG`` best boxes of each image."""
import torch
from torch import nn

from maskrcnn_benchmark.modeling.rpn.utils import permute_and_flatten
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.boxlist_ops import boxlist_ml_nms, cat_boxlist, remove_small_boxes


class ATSSPostProcessor(nn.Module):
    def __init__(self, pre_nms_thresh, pre_nms_top_n, nms_thresh, fpn_post_nms_top_n, min_size,
                 num_classes, box_coder):
        super().__init__()
        self.pre_nms_thresh = pre_nms_thresh
        self.pre_nms_top_n = pre_nms_top_n
        self.nms_thresh = nms_thresh
        self.fpn_post_nms_top_n = fpn_post_nms_top_n
        self.min_size = min_size
        self.num_classes = num_classes
        self.box_coder = box_coder

    def forward_for_single_feature_map(self, anchors, box_cls, box_regression, quality):
        """anchors: this level's BoxList per image; box_cls: ``N x A*C x H x W``."""
        n, _, h, w = box_cls.shape
        a = box_regression.shape[1] // 4
        c = box_cls.shape[1] // a
        class_probs = permute_and_flatten(box_cls, n, a, c, h, w).sigmoid()
        deltas = permute_and_flatten(box_regression, n, a, 4, h, w)
        quality_probs = permute_and_flatten(quality, n, a, 1, h, w).sigmoid()[..., 0]

        results = []
        for probs, image_deltas, image_quality, image_anchors in zip(class_probs, deltas, quality_probs, anchors):
            anchor_idx, class_idx = (probs > self.pre_nms_thresh).nonzero(as_tuple=True)
            scores = torch.sqrt(probs[anchor_idx, class_idx] * image_quality[anchor_idx])
            top_n = min(self.pre_nms_top_n, scores.numel())
            scores, top = scores.topk(top_n, sorted=False)
            anchor_idx, class_idx = anchor_idx[top], class_idx[top]

            boxes = self.box_coder.decode(image_deltas[anchor_idx], image_anchors.bbox[anchor_idx])
            boxlist = BoxList(boxes, image_anchors.size, mode="xyxy")
            boxlist.add_field("labels", class_idx + 1)
            boxlist.add_field("scores", scores)
            boxlist = boxlist.clip_to_image(remove_empty=False)
            results.append(remove_small_boxes(boxlist, self.min_size))
        return results

    def forward(self, anchors, box_cls, box_regression, quality):
        """anchors: per image, a list of per-level BoxLists; returns one BoxList per image."""
        anchors_per_level = list(zip(*anchors))
        per_level = [
            self.forward_for_single_feature_map(level_anchors, cls, reg, qual)
            for level_anchors, cls, reg, qual in zip(anchors_per_level, box_cls, box_regression, quality)
        ]
        per_image = [cat_boxlist(list(levels)) for levels in zip(*per_level)]
        return self.select_over_all_levels(per_image)

    def select_over_all_levels(self, boxlists):
        return [boxlist_ml_nms(b, self.nms_thresh, max_proposals=self.fpn_post_nms_top_n) for b in boxlists]


def make_atss_postprocessor(config, box_coder, head_cfg=None, processor_class=ATSSPostProcessor, **extra):
    head_cfg = config.MODEL.ATSS if head_cfg is None else head_cfg
    return processor_class(
        pre_nms_thresh=head_cfg.INFERENCE_TH,
        pre_nms_top_n=head_cfg.PRE_NMS_TOP_N,
        nms_thresh=head_cfg.NMS_TH,
        fpn_post_nms_top_n=config.TEST.DETECTIONS_PER_IMG,
        min_size=0,
        num_classes=head_cfg.NUM_CLASSES,
        box_coder=box_coder,
        **extra,
    )
