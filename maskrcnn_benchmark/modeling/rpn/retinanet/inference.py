"""RetinaNet inference: the one-stage pipeline (``rpn/one_stage_inference.py``) ranking anchors by
their sigmoid class probability and decoding them with the box coder."""
from maskrcnn_benchmark.modeling.box_coder import BoxCoder
from maskrcnn_benchmark.modeling.rpn.inference import RPNPostProcessor
from maskrcnn_benchmark.modeling.rpn.one_stage_inference import (
    candidates_above_threshold,
    detections_boxlist,
    join_levels,
    keep_top_candidates,
    keep_top_detections,
    postprocessor_settings,
)
from maskrcnn_benchmark.modeling.rpn.utils import permute_and_flatten


class RetinaNetPostProcessor(RPNPostProcessor):
    # An RPNPostProcessor by maskrcnn-benchmark's public surface; it shares the one-stage pipeline's
    # functions rather than its base class.
    def __init__(self, pre_nms_thresh, pre_nms_top_n, nms_thresh, fpn_post_nms_top_n, min_size,
                 num_classes, box_coder=None):
        if box_coder is None:
            box_coder = BoxCoder(weights=(10.0, 10.0, 5.0, 5.0))
        super().__init__(pre_nms_top_n, fpn_post_nms_top_n, nms_thresh, min_size, box_coder,
                         fpn_post_nms_top_n=fpn_post_nms_top_n, fpn_post_nms_per_batch=False)
        self.pre_nms_thresh = pre_nms_thresh
        self.num_classes = num_classes

    def add_gt_proposals(self, proposals, targets):
        # Detections are final outputs; unlike RPN proposals they are never mixed with the ground truth.
        raise NotImplementedError("RetinaNet detections are not extended with ground-truth boxes")

    def forward_for_single_feature_map(self, anchors, box_cls, box_regression):
        """anchors: one BoxList per image for this level; box_cls: [N, A*C, H, W]."""
        N, _, H, W = box_cls.shape
        A = box_regression.size(1) // 4
        C = box_cls.size(1) // A
        class_probs = permute_and_flatten(box_cls, N, A, C, H, W).sigmoid()
        deltas_all = permute_and_flatten(box_regression, N, A, 4, H, W)

        results = []
        for probs, deltas, anchors_per_image in zip(class_probs, deltas_all, anchors):
            # The score is the class probability itself.
            anchor_idx, class_idx, scores = candidates_above_threshold(probs, self.pre_nms_thresh)
            scores, anchor_idx, class_idx = keep_top_candidates(scores, self.pre_nms_top_n, anchor_idx, class_idx)
            boxes = self.box_coder.decode(deltas[anchor_idx], anchors_per_image.bbox[anchor_idx])
            results.append(detections_boxlist(boxes, anchors_per_image.size, class_idx, scores, self.min_size))
        return results

    def forward(self, anchors, box_cls, box_regression, targets=None):
        """anchors: per image, a list of per-level BoxLists; returns one BoxList per image."""
        anchors_per_level = list(zip(*anchors))
        per_level = [
            self.forward_for_single_feature_map(a, c, r)
            for a, c, r in zip(anchors_per_level, box_cls, box_regression)
        ]
        return self.select_over_all_levels(join_levels(per_level))

    def select_over_all_levels(self, boxlists):
        return [keep_top_detections(b, self.nms_thresh, self.fpn_post_nms_top_n) for b in boxlists]


def make_retinanet_postprocessor(config, rpn_box_coder, is_train):
    return RetinaNetPostProcessor(box_coder=rpn_box_coder, **postprocessor_settings(config, config.MODEL.RETINANET))
