"""FCOS inference: the one-stage pipeline (``rpn/one_stage_inference.py``) over points.

Per level: points whose class probability exceeds INFERENCE_TH are candidates; the PRE_NMS_TOP_N
best by (class probability x centerness) are decoded into boxes from their (left, top, right,
bottom) distances. Over all levels: class-wise NMS (NMS_TH) and the TEST.DETECTIONS_PER_IMG best
boxes.

The reported score is class probability x centerness. ``sqrt_score=True`` reports its square root
instead, as later public FCOS versions do; the transform is monotonic, so rankings and therefore
COCO AP are unchanged, only the score scale (and any fixed threshold applied to it) differs.
"""
import torch

from maskrcnn_benchmark.modeling.rpn.fcos.loss import flatten_level
from maskrcnn_benchmark.modeling.rpn.one_stage_inference import (
    OneStagePostProcessor,
    candidates_above_threshold,
    detections_boxlist,
    join_levels,
    keep_top_candidates,
    postprocessor_settings,
)


class FCOSPostProcessor(OneStagePostProcessor):
    def __init__(self, pre_nms_thresh, pre_nms_top_n, nms_thresh, fpn_post_nms_top_n, min_size,
                 num_classes, sqrt_score=False):
        super().__init__(pre_nms_thresh, pre_nms_top_n, nms_thresh, fpn_post_nms_top_n, min_size, num_classes)
        self.sqrt_score = sqrt_score

    def forward_for_single_feature_map(self, locations, box_cls, box_regression, centerness, image_sizes):
        """locations [H*W, 2]; box_cls [N, C, H, W]; box_regression [N, 4, H, W] in pixels."""
        class_prob = flatten_level(box_cls).sigmoid()
        distances = flatten_level(box_regression)
        center_prob = flatten_level(centerness).sigmoid()[..., 0]

        results = []
        for prob, dist, ctr, (height, width) in zip(class_prob, distances, center_prob, image_sizes):
            point_idx, class_idx, candidate_prob = candidates_above_threshold(prob, self.pre_nms_thresh)
            scores = candidate_prob * ctr[point_idx]
            scores, point_idx, class_idx = keep_top_candidates(scores, self.pre_nms_top_n, point_idx, class_idx)
            points, ltrb = locations[point_idx], dist[point_idx]
            boxes = torch.cat((points - ltrb[:, :2], points + ltrb[:, 2:]), dim=1)
            scores = scores.sqrt() if self.sqrt_score else scores
            results.append(detections_boxlist(boxes, (int(width), int(height)), class_idx, scores, self.min_size))
        return results

    def forward(self, locations, box_cls, box_regression, centerness, image_sizes):
        """image_sizes: (height, width) per image, as ImageList.image_sizes."""
        per_level = [
            self.forward_for_single_feature_map(l, c, r, ctr, image_sizes)
            for l, c, r, ctr in zip(locations, box_cls, box_regression, centerness)
        ]
        return self.select_over_all_levels(join_levels(per_level))


def make_fcos_postprocessor(config):
    return FCOSPostProcessor(**postprocessor_settings(config, config.MODEL.FCOS))
