"""The second stage: box head, then (Mask R-CNN) mask head on its output."""
import torch

from .box_head.box_head import build_roi_box_head
from .mask_head.mask_head import build_roi_mask_head


class CombinedROIHeads(torch.nn.ModuleDict):
    """Runs the heads in order; with ``SHARE_BOX_FEATURE_EXTRACTOR`` the mask head reuses the box
    head's feature extractor (C4), and in training its per-RoI features too."""

    def __init__(self, cfg, heads):
        super(CombinedROIHeads, self).__init__(heads)
        self.cfg = cfg.clone()
        if cfg.MODEL.MASK_ON and cfg.MODEL.ROI_MASK_HEAD.SHARE_BOX_FEATURE_EXTRACTOR:
            self.mask.feature_extractor = self.box.feature_extractor

    def forward(self, features, proposals, targets=None):
        losses = {}
        x, detections, loss_box = self.box(features, proposals, targets)
        losses.update(loss_box)
        if self.cfg.MODEL.MASK_ON:
            mask_features = features
            if self.training and self.cfg.MODEL.ROI_MASK_HEAD.SHARE_BOX_FEATURE_EXTRACTOR:
                mask_features = x
            x, detections, loss_mask = self.mask(mask_features, detections, targets)
            losses.update(loss_mask)
        return x, detections, losses


def build_roi_heads(cfg, in_channels):
    heads = []
    one_stage = any(cfg.MODEL.get(key, False) for key in ("RETINANET_ON", "FCOS_ON", "ATSS_ON", "PAA_ON"))
    if cfg.MODEL.RPN_ONLY or one_stage:
        return []
    heads.append(("box", build_roi_box_head(cfg, in_channels)))
    if cfg.MODEL.MASK_ON:
        heads.append(("mask", build_roi_mask_head(cfg, in_channels)))
    return CombinedROIHeads(cfg, heads)
