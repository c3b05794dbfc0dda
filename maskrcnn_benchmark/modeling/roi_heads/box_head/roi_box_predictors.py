"""Class scores and per-class box regressions from the per-RoI features."""
from torch import nn

from maskrcnn_benchmark.config.configurable import configurable
from maskrcnn_benchmark.modeling import registry
from maskrcnn_benchmark.modeling.utils import registered


class _BoxPredictor(nn.Module):
    """Linear class scores (``num_classes``, background included) and box regressions (4 per
    class, or 4 for background and 4 shared by every foreground class when class-agnostic)."""

    @configurable
    def __init__(self, in_channels, num_classes, cls_agnostic_bbox_reg=False):
        super(_BoxPredictor, self).__init__()
        num_bbox_reg_classes = 2 if cls_agnostic_bbox_reg else num_classes
        self.cls_score = nn.Linear(in_channels, num_classes)
        self.bbox_pred = nn.Linear(in_channels, num_bbox_reg_classes * 4)
        nn.init.normal_(self.cls_score.weight, std=0.01)
        nn.init.normal_(self.bbox_pred.weight, std=0.001)
        nn.init.constant_(self.cls_score.bias, 0)
        nn.init.constant_(self.bbox_pred.bias, 0)

    @classmethod
    def from_config(cls, cfg, in_channels):
        return {
            "in_channels": in_channels,
            "num_classes": cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES,
            "cls_agnostic_bbox_reg": cfg.MODEL.CLS_AGNOSTIC_BBOX_REG,
        }

    def forward(self, x):
        x = x.flatten(start_dim=1)
        return self.cls_score(x), self.bbox_pred(x)


@registry.ROI_BOX_PREDICTOR.register("FastRCNNPredictor")
class FastRCNNPredictor(_BoxPredictor):
    """C4: global average pooling of the res5 map, then linear scores and regressions."""

    @configurable
    def __init__(self, in_channels, num_classes, cls_agnostic_bbox_reg=False):
        super(FastRCNNPredictor, self).__init__(in_channels, num_classes, cls_agnostic_bbox_reg)
        self.avgpool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        return super(FastRCNNPredictor, self).forward(self.avgpool(x))


@registry.ROI_BOX_PREDICTOR.register("FPNPredictor")
class FPNPredictor(_BoxPredictor):
    """FPN: linear scores and regressions on the MLP features."""


def make_roi_box_predictor(cfg, in_channels):
    name = cfg.MODEL.ROI_BOX_HEAD.PREDICTOR
    return registered(registry.ROI_BOX_PREDICTOR, name, "MODEL.ROI_BOX_HEAD.PREDICTOR")(cfg, in_channels)
