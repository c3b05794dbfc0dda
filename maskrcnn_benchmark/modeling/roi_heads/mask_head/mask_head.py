"""The mask head of Mask R-CNN."""
import torch

from maskrcnn_benchmark.config.configurable import configurable

from .inference import make_roi_mask_post_processor
from .loss import make_roi_mask_loss_evaluator
from .roi_mask_feature_extractors import make_roi_mask_feature_extractor
from .roi_mask_predictors import make_roi_mask_predictor


def keep_only_positive_boxes(boxes):
    """Per image, the boxes with a foreground "labels" entry, and the boolean mask that picked them."""
    positive_boxes, positive_masks = [], []
    for boxes_per_image in boxes:
        positive = boxes_per_image.get_field("labels") > 0
        positive_boxes.append(boxes_per_image[positive])
        positive_masks.append(positive)
    return positive_boxes, positive_masks


class ROIMaskHead(torch.nn.Module):
    """Training: ``loss_mask`` on the box head's positive proposals. Inference: a "mask" field on
    every detection.

    With ``share_box_feature_extractor`` (C4) the training features are the box head's per-RoI
    features, handed in by CombinedROIHeads, and the feature extractor is the box head's.
    """

    @configurable
    def __init__(self, feature_extractor, predictor, post_processor, loss_evaluator, share_box_feature_extractor=False):
        super(ROIMaskHead, self).__init__()
        self.feature_extractor = feature_extractor
        self.predictor = predictor
        self.post_processor = post_processor
        self.loss_evaluator = loss_evaluator
        self.share_box_feature_extractor = share_box_feature_extractor

    @classmethod
    def from_config(cls, cfg, in_channels):
        feature_extractor = make_roi_mask_feature_extractor(cfg, in_channels)
        return {
            "feature_extractor": feature_extractor,
            "predictor": make_roi_mask_predictor(cfg, feature_extractor.out_channels),
            "post_processor": make_roi_mask_post_processor(cfg),
            "loss_evaluator": make_roi_mask_loss_evaluator(cfg),
            "share_box_feature_extractor": cfg.MODEL.ROI_MASK_HEAD.SHARE_BOX_FEATURE_EXTRACTOR,
        }

    def forward(self, features, proposals, targets=None):
        """``features``: the feature maps, or (training with a shared box feature extractor) the
        box head's per-RoI features for ``proposals``. Returns (features, boxes, losses)."""
        if self.training:
            if targets is None:
                raise ValueError("ROIMaskHead: targets must be given in training mode")
            all_proposals = proposals
            proposals, positive_masks = keep_only_positive_boxes(proposals)

        if self.training and self.share_box_feature_extractor:
            x = features[torch.cat(positive_masks, dim=0)]
        else:
            x = self.feature_extractor(features, proposals)
        mask_logits = self.predictor(x)

        if not self.training:
            return x, self.post_processor(mask_logits, proposals), {}
        loss_mask = self.loss_evaluator(proposals, mask_logits, targets)
        return x, all_proposals, {"loss_mask": loss_mask}


def build_roi_mask_head(cfg, in_channels):
    return ROIMaskHead(cfg, in_channels)
