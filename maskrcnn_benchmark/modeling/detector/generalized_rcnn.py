"""Backbone -> RPN (or a one-stage head) -> RoI heads."""
from torch import nn

from maskrcnn_benchmark.config.configurable import configurable
from maskrcnn_benchmark.modeling.backbone import build_backbone
from maskrcnn_benchmark.modeling.roi_heads.roi_heads import build_roi_heads
from maskrcnn_benchmark.modeling.rpn.rpn import build_rpn
from maskrcnn_benchmark.structures.image_list import to_image_list


class GeneralizedRCNN(nn.Module):
    """The detector. ``forward(images, targets=None)``: in training, a dict of losses (and
    detached ``sf_*`` diagnostics); in evaluation, one BoxList of detections per image."""

    @configurable
    def __init__(self, backbone, rpn, roi_heads=None):
        super(GeneralizedRCNN, self).__init__()
        self.backbone = backbone
        self.rpn = rpn
        # [] (maskrcnn-benchmark's value for "none") or None: the first stage's boxes are the output.
        self.roi_heads = roi_heads if roi_heads is not None else []

    @classmethod
    def from_config(cls, cfg):
        backbone = build_backbone(cfg)
        return {
            "backbone": backbone,
            "rpn": build_rpn(cfg, backbone.out_channels),
            "roi_heads": build_roi_heads(cfg, backbone.out_channels),
        }

    def forward(self, images, targets=None):
        """``images``: an ImageList, a batched tensor or a list of ``C x H x W`` tensors;
        ``targets``: per image BoxLists (training only)."""
        if self.training and targets is None:
            raise ValueError("GeneralizedRCNN: targets must be given in training mode")
        images = to_image_list(images)
        features = self.backbone(images.tensors)
        proposals, proposal_losses = self.rpn(images, features, targets)
        if self.roi_heads:
            _, result, detector_losses = self.roi_heads(features, proposals, targets)
        else:
            # RPN-only and one-stage detectors: the first stage's boxes are the output.
            result, detector_losses = proposals, {}

        if self.training:
            losses = {}
            losses.update(detector_losses)
            losses.update(proposal_losses)
            return losses
        return result
