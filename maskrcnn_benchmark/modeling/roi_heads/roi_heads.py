"""The second stage: box head, then (Mask R-CNN) mask head on its output."""
import torch

from maskrcnn_benchmark.config.configurable import configurable
from maskrcnn_benchmark.modeling.architecture import is_dense_detector

from .box_head.box_head import build_roi_box_head
from .mask_head.mask_head import build_roi_mask_head


class CombinedROIHeads(torch.nn.ModuleDict):
    """Runs the heads in order: "box", then "mask" when present. A mask head with
    ``share_box_feature_extractor`` (C4) reuses the box head's feature extractor, and in training
    its per-RoI features too."""

    @configurable
    def __init__(self, heads):
        super(CombinedROIHeads, self).__init__(heads)
        if "mask" in self and self.mask.share_box_feature_extractor:
            self.mask.feature_extractor = self.box.feature_extractor

    @classmethod
    def from_config(cls, cfg, heads):
        return {"heads": heads}

    def forward(self, features, proposals, targets=None):
        losses = {}
        x, detections, loss_box = self.box(features, proposals, targets)
        losses.update(loss_box)
        if "mask" in self:
            mask_features = features
            if self.training and self.mask.share_box_feature_extractor:
                mask_features = x
            x, detections, loss_mask = self.mask(mask_features, detections, targets)
            losses.update(loss_mask)
        return x, detections, losses


def build_roi_heads(cfg, in_channels):
    """The box head, and the mask head with MODEL.MASK_ON; [] for an RPN-only or dense detector."""
    if cfg.MODEL.RPN_ONLY or is_dense_detector(cfg):
        return []
    heads = []
    heads.append(("box", build_roi_box_head(cfg, in_channels)))
    if cfg.MODEL.MASK_ON:
        heads.append(("mask", build_roi_mask_head(cfg, in_channels)))
    return CombinedROIHeads(cfg, heads)
