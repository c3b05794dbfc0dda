"""Class scores and per-class box regressions from the per-RoI features."""
from torch import nn

from maskrcnn_benchmark.modeling import registry


def _num_bbox_reg_classes(cfg):
    # Class-agnostic regression keeps one background and one shared foreground set of deltas.
    return 2 if cfg.MODEL.CLS_AGNOSTIC_BBOX_REG else cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES


def _init_predictions(cls_score, bbox_pred):
    nn.init.normal_(cls_score.weight, std=0.01)
    nn.init.normal_(bbox_pred.weight, std=0.001)
    nn.init.constant_(cls_score.bias, 0)
    nn.init.constant_(bbox_pred.bias, 0)


@registry.ROI_BOX_PREDICTOR.register("FastRCNNPredictor")
class FastRCNNPredictor(nn.Module):
    """C4: global average pooling of the res5 map, then linear scores and regressions."""

    def __init__(self, config, in_channels):
        super(FastRCNNPredictor, self).__init__()
        num_classes = config.MODEL.ROI_BOX_HEAD.NUM_CLASSES
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.cls_score = nn.Linear(in_channels, num_classes)
        self.bbox_pred = nn.Linear(in_channels, _num_bbox_reg_classes(config) * 4)
        _init_predictions(self.cls_score, self.bbox_pred)

    def forward(self, x):
        x = self.avgpool(x).flatten(start_dim=1)
        return self.cls_score(x), self.bbox_pred(x)


@registry.ROI_BOX_PREDICTOR.register("FPNPredictor")
class FPNPredictor(nn.Module):
    """FPN: linear scores and regressions on the MLP features."""

    def __init__(self, cfg, in_channels):
        super(FPNPredictor, self).__init__()
        num_classes = cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES
        self.cls_score = nn.Linear(in_channels, num_classes)
        self.bbox_pred = nn.Linear(in_channels, _num_bbox_reg_classes(cfg) * 4)
        _init_predictions(self.cls_score, self.bbox_pred)

    def forward(self, x):
        if x.ndim == 4:
            x = x.flatten(start_dim=1)
        return self.cls_score(x), self.bbox_pred(x)


def make_roi_box_predictor(cfg, in_channels):
    name = cfg.MODEL.ROI_BOX_HEAD.PREDICTOR
    if name not in registry.ROI_BOX_PREDICTOR:
        raise KeyError(
            "MODEL.ROI_BOX_HEAD.PREDICTOR: unknown {!r}; registered: {}".format(
                name, sorted(registry.ROI_BOX_PREDICTOR.keys())
            )
        )
    return registry.ROI_BOX_PREDICTOR[name](cfg, in_channels)
