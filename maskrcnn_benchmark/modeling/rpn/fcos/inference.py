"""FCOS inference.

Per level: points whose class probability exceeds INFERENCE_TH are candidates; the PRE_NMS_TOP_N
best by (class probability x centerness) are decoded into boxes. Over all levels: class-wise NMS
(NMS_TH) and the TEST.DETECTIONS_PER_IMG best boxes.

The reported score is class probability x centerness. ``sqrt_score=True`` reports its square root
instead, as later public FCOS versions do; the transform is monotonic, so rankings and therefore
COCO AP are unchanged, only the score scale (and any fixed threshold applied to it) differs.
"""
import torch

from maskrcnn_benchmark.modeling.rpn.fcos.loss import flatten_level
from maskrcnn_benchmark.modeling.rpn.retinanet.inference import keep_top_detections
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.boxlist_ops import cat_boxlist, remove_small_boxes


class FCOSPostProcessor(torch.nn.Module):
    def __init__(self, pre_nms_thresh, pre_nms_top_n, nms_thresh, fpn_post_nms_top_n, min_size,
                 num_classes, sqrt_score=False):
        super().__init__()
        self.pre_nms_thresh = pre_nms_thresh
        self.pre_nms_top_n = pre_nms_top_n
        self.nms_thresh = nms_thresh
        self.fpn_post_nms_top_n = fpn_post_nms_top_n
        self.min_size = min_size
        self.num_classes = num_classes
        self.sqrt_score = sqrt_score

    def forward_for_single_feature_map(self, locations, box_cls, box_regression, centerness, image_sizes):
        """locations [H*W, 2]; box_cls [N, C, H, W]; box_regression [N, 4, H, W] in pixels."""
        class_prob = flatten_level(box_cls).sigmoid()
        distances = flatten_level(box_regression)
        center_prob = flatten_level(centerness).sigmoid()[..., 0]

        results = []
        for prob, dist, ctr, (height, width) in zip(class_prob, distances, center_prob, image_sizes):
            point_idx, class_idx = (prob > self.pre_nms_thresh).nonzero(as_tuple=True)
            scores = prob[point_idx, class_idx] * ctr[point_idx]
            top_n = min(self.pre_nms_top_n, scores.numel())
            scores, top = scores.topk(top_n, sorted=False)
            point_idx, class_idx = point_idx[top], class_idx[top]

            points, ltrb = locations[point_idx], dist[point_idx]
            boxes = torch.cat((points - ltrb[:, :2], points + ltrb[:, 2:]), dim=1)
            boxlist = BoxList(boxes, (int(width), int(height)), mode="xyxy")
            boxlist.add_field("labels", class_idx + 1)
            boxlist.add_field("scores", scores.sqrt() if self.sqrt_score else scores)
            boxlist = boxlist.clip_to_image(remove_empty=False)
            results.append(remove_small_boxes(boxlist, self.min_size))
        return results

    def forward(self, locations, box_cls, box_regression, centerness, image_sizes):
        """image_sizes: (height, width) per image, as ImageList.image_sizes."""
        per_level = [
            self.forward_for_single_feature_map(l, c, r, ctr, image_sizes)
            for l, c, r, ctr in zip(locations, box_cls, box_regression, centerness)
        ]
        per_image = [cat_boxlist(list(levels)) for levels in zip(*per_level)]
        return self.select_over_all_levels(per_image)

    def select_over_all_levels(self, boxlists):
        return [keep_top_detections(b, self.nms_thresh, self.fpn_post_nms_top_n) for b in boxlists]


def make_fcos_postprocessor(config):
    fcos_cfg = config.MODEL.FCOS
    return FCOSPostProcessor(
        pre_nms_thresh=fcos_cfg.INFERENCE_TH,
        pre_nms_top_n=fcos_cfg.PRE_NMS_TOP_N,
        nms_thresh=fcos_cfg.NMS_TH,
        fpn_post_nms_top_n=config.TEST.DETECTIONS_PER_IMG,
        min_size=0,
        num_classes=fcos_cfg.NUM_CLASSES,
    )
