"""RetinaNet inference: per-level score threshold and top-k, box decoding, class-wise NMS."""
from maskrcnn_benchmark.modeling.box_coder import BoxCoder
from maskrcnn_benchmark.modeling.rpn.inference import RPNPostProcessor
from maskrcnn_benchmark.modeling.rpn.utils import permute_and_flatten
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.boxlist_ops import boxlist_ml_nms, cat_boxlist, remove_small_boxes


def keep_top_detections(boxlist, nms_thresh, max_detections):
    """Class-wise NMS, then the ``max_detections`` highest-scoring boxes of the image."""
    return boxlist_ml_nms(boxlist, nms_thresh, max_proposals=max_detections)


class RetinaNetPostProcessor(RPNPostProcessor):
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
        scores_all = permute_and_flatten(box_cls, N, A, C, H, W).sigmoid()
        deltas_all = permute_and_flatten(box_regression, N, A, 4, H, W)

        results = []
        for scores, deltas, anchors_per_image in zip(scores_all, deltas_all, anchors):
            candidates = scores > self.pre_nms_thresh
            anchor_idx, class_idx = candidates.nonzero(as_tuple=True)
            candidate_scores = scores[anchor_idx, class_idx]
            top_n = min(self.pre_nms_top_n, candidate_scores.numel())
            candidate_scores, top = candidate_scores.topk(top_n, sorted=False)
            anchor_idx, class_idx = anchor_idx[top], class_idx[top]

            boxes = self.box_coder.decode(deltas[anchor_idx], anchors_per_image.bbox[anchor_idx])
            boxlist = BoxList(boxes, anchors_per_image.size, mode="xyxy")
            boxlist.add_field("labels", class_idx + 1)
            boxlist.add_field("scores", candidate_scores)
            boxlist = boxlist.clip_to_image(remove_empty=False)
            results.append(remove_small_boxes(boxlist, self.min_size))
        return results

    def forward(self, anchors, box_cls, box_regression, targets=None):
        """anchors: per image, a list of per-level BoxLists; returns one BoxList per image."""
        anchors_per_level = list(zip(*anchors))
        per_level = [
            self.forward_for_single_feature_map(a, c, r)
            for a, c, r in zip(anchors_per_level, box_cls, box_regression)
        ]
        per_image = [cat_boxlist(list(levels)) for levels in zip(*per_level)]
        return self.select_over_all_levels(per_image)

    def select_over_all_levels(self, boxlists):
        return [keep_top_detections(b, self.nms_thresh, self.fpn_post_nms_top_n) for b in boxlists]


def make_retinanet_postprocessor(config, rpn_box_coder, is_train):
    retina_cfg = config.MODEL.RETINANET
    return RetinaNetPostProcessor(
        pre_nms_thresh=retina_cfg.INFERENCE_TH,
        pre_nms_top_n=retina_cfg.PRE_NMS_TOP_N,
        nms_thresh=retina_cfg.NMS_TH,
        fpn_post_nms_top_n=config.TEST.DETECTIONS_PER_IMG,
        min_size=0,
        num_classes=retina_cfg.NUM_CLASSES,
        box_coder=rpn_box_coder,
    )
