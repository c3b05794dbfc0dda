"""DenseDetector: a backbone and one dense (one-stage) head, whose detections are the output.

RetinaNet, FCOS, ATSS, PAA and any head registered in registry.DENSE_HEADS run in it. The head is
registered as the submodule ``rpn``, so state_dict keys are those of maskrcnn-benchmark's RetinaNet
(``rpn.head.cls_logits.weight``, ...) and of every checkpoint written before this class existed.
"""
from torch import nn

from maskrcnn_benchmark.modeling import registry
from maskrcnn_benchmark.modeling.backbone import build_backbone
from maskrcnn_benchmark.config.configurable import configurable
from maskrcnn_benchmark.modeling.dense_heads.build import build_dense_head
from maskrcnn_benchmark.structures.image_list import to_image_list


@registry.META_ARCHITECTURES.register("DenseDetector")
class DenseDetector(nn.Module):
    """``forward(images, targets=None)``: ``images`` an ImageList, a batched tensor or a list of
    ``C x H x W`` tensors, ``targets`` per image BoxLists (training only). In training, the head's
    dict of losses (and detached ``sf_*`` diagnostics); in evaluation, one BoxList of detections
    per image.

    The head is called as ``head(images, features, targets)`` and returns ``(detections, losses)``
    (detections may be None in training).
    """

    @configurable
    def __init__(self, backbone, head):
        super().__init__()
        self.backbone = backbone
        self.rpn = head

    @classmethod
    def from_config(cls, cfg):
        backbone = build_backbone(cfg)
        return {"backbone": backbone, "head": build_dense_head(cfg, backbone.out_channels)}

    @property
    def dense_head(self):
        return self.rpn

    def forward(self, images, targets=None):
        if self.training and targets is None:
            raise ValueError("DenseDetector: targets must be given in training mode")
        images = to_image_list(images)
        detections, losses = self.rpn(images, self.backbone(images.tensors), targets)
        return losses if self.training else detections
