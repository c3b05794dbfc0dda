"""Final detections from the box head: decode per class, threshold, per-class NMS, top-k."""
import torch
from torch import nn
from torch.nn import functional as F

from maskrcnn_benchmark.layers.nms import batched_nms
from maskrcnn_benchmark.modeling.box_coder import BoxCoder
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.box_convention import (
    DEFAULT_BOX_CONVENTION,
    box_convention,
    box_convention_from_config,
)


class PostProcessor(nn.Module):
    """Turns class logits and box regressions of the proposals into detections with "scores"
    and "labels" fields, at most ``detections_per_img`` per image. Clipping, empty boxes and NMS
    follow the box ``convention``."""

    def __init__(
        self,
        score_thresh=0.05,
        nms=0.5,
        detections_per_img=100,
        box_coder=None,
        cls_agnostic_bbox_reg=False,
        bbox_aug_enabled=False,
        convention=DEFAULT_BOX_CONVENTION,
    ):
        super(PostProcessor, self).__init__()
        self.score_thresh = score_thresh
        self.nms = nms
        self.detections_per_img = detections_per_img
        self.convention = box_convention(convention)
        self.box_coder = box_coder if box_coder is not None else BoxCoder((10.0, 10.0, 5.0, 5.0), convention=convention)
        self.cls_agnostic_bbox_reg = cls_agnostic_bbox_reg
        self.bbox_aug_enabled = bbox_aug_enabled

    def forward(self, x, boxes):
        """``x``: (class_logits, box_regression) for the concatenated proposals ``boxes``
        (per-image BoxLists). Returns per-image BoxLists."""
        class_logits, box_regression = x
        class_prob = F.softmax(class_logits, dim=-1)
        num_classes = class_prob.shape[1]
        proposals = torch.cat([b.convert("xyxy").bbox for b in boxes], dim=0)
        if self.cls_agnostic_bbox_reg:
            box_regression = box_regression[:, -4:]
        decoded = self.box_coder.decode(box_regression.view(len(proposals), -1), proposals)
        if self.cls_agnostic_bbox_reg:
            decoded = decoded.repeat(1, num_classes)

        results = []
        boxes_per_image = [len(b) for b in boxes]
        for prob, decoded_boxes, proposal in zip(
            class_prob.split(boxes_per_image), decoded.split(boxes_per_image), boxes
        ):
            boxlist = self.prepare_boxlist(decoded_boxes, prob, proposal.size)
            boxlist = boxlist.clip_to_image(remove_empty=False, convention=self.convention)
            if not self.bbox_aug_enabled:
                boxlist = self.filter_results(boxlist, num_classes)
            results.append(boxlist)
        return results

    def prepare_boxlist(self, boxes, scores, image_shape):
        """One row per (proposal, class): ``boxes`` ``R x 4C`` -> ``R*C x 4``, "scores" ``R*C``."""
        boxlist = BoxList(boxes.reshape(-1, 4), image_shape, mode="xyxy")
        boxlist.add_field("scores", scores.reshape(-1))
        return boxlist

    def filter_results(self, boxlist, num_classes):
        """Non-empty foreground boxes above the score threshold, NMS within each class, best first."""
        boxes = boxlist.bbox.reshape(-1, num_classes, 4)
        scores = boxlist.get_field("scores").reshape(-1, num_classes)
        device = scores.device

        # Boxes clipped to nothing are no detections (and identical empty boxes have IoU 0 / 0,
        # so NMS would keep every copy).
        candidate = (scores > self.score_thresh) & self.convention.nonempty(boxes)
        candidate[:, 0] = False  # background is never a detection
        proposal_idx, class_idx = candidate.nonzero(as_tuple=True)
        kept_boxes = boxes[proposal_idx, class_idx]
        kept_scores = scores[proposal_idx, class_idx]

        threshold, legacy = self.convention.nms_arguments(self.nms)
        keep = batched_nms(kept_boxes, kept_scores, class_idx, threshold, legacy=legacy)
        if self.detections_per_img > 0:
            keep = keep[: self.detections_per_img]

        result = BoxList(kept_boxes[keep], boxlist.size, mode="xyxy")
        result.add_field("scores", kept_scores[keep])
        result.add_field("labels", class_idx[keep].to(torch.int64).to(device))
        return result


def make_roi_box_post_processor(cfg):
    convention = box_convention_from_config(cfg)
    return PostProcessor(
        score_thresh=cfg.MODEL.ROI_HEADS.SCORE_THRESH,
        nms=cfg.MODEL.ROI_HEADS.NMS,
        detections_per_img=cfg.MODEL.ROI_HEADS.DETECTIONS_PER_IMG,
        box_coder=BoxCoder(weights=cfg.MODEL.ROI_HEADS.BBOX_REG_WEIGHTS, convention=convention),
        cls_agnostic_bbox_reg=cfg.MODEL.CLS_AGNOSTIC_BBOX_REG,
        bbox_aug_enabled=cfg.TEST.BBOX_AUG.ENABLED,
        convention=convention,
    )
