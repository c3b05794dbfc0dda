"""ATSS / PAA inference: the one-stage pipeline (``rpn/one_stage_inference.py``) ranking anchors by
sqrt(class probability x quality probability), where the quality is the centre-ness (ATSS) or the
predicted IoU (PAA), and decoding them with the box coder."""
import torch

from maskrcnn_benchmark.modeling.rpn.one_stage_inference import (
    OneStagePostProcessor,
    candidates_above_threshold,
    detections_boxlist,
    join_levels,
    keep_top_candidates,
    postprocessor_settings,
)
from maskrcnn_benchmark.modeling.rpn.utils import permute_and_flatten


class ATSSPostProcessor(OneStagePostProcessor):
    def __init__(self, pre_nms_thresh, pre_nms_top_n, nms_thresh, fpn_post_nms_top_n, min_size,
                 num_classes, box_coder):
        super().__init__(pre_nms_thresh, pre_nms_top_n, nms_thresh, fpn_post_nms_top_n, min_size, num_classes)
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
            anchor_idx, class_idx, candidate_probs = candidates_above_threshold(probs, self.pre_nms_thresh)
            scores = torch.sqrt(candidate_probs * image_quality[anchor_idx])
            scores, anchor_idx, class_idx = keep_top_candidates(scores, self.pre_nms_top_n, anchor_idx, class_idx)
            boxes = self.box_coder.decode(image_deltas[anchor_idx], image_anchors.bbox[anchor_idx])
            results.append(detections_boxlist(boxes, image_anchors.size, class_idx, scores, self.min_size))
        return results

    def forward(self, anchors, box_cls, box_regression, quality):
        """anchors: per image, a list of per-level BoxLists; returns one BoxList per image."""
        anchors_per_level = list(zip(*anchors))
        per_level = [
            self.forward_for_single_feature_map(level_anchors, cls, reg, qual)
            for level_anchors, cls, reg, qual in zip(anchors_per_level, box_cls, box_regression, quality)
        ]
        return self.select_over_all_levels(join_levels(per_level))


def make_atss_postprocessor(config, box_coder, head_cfg=None, processor_class=ATSSPostProcessor, **extra):
    head_cfg = config.MODEL.ATSS if head_cfg is None else head_cfg
    return processor_class(box_coder=box_coder, **postprocessor_settings(config, head_cfg), **extra)
