"""Per-class mask logits from the per-RoI mask features."""
from torch import nn
from torch.nn import functional as F

from maskrcnn_benchmark.config.configurable import configurable
from maskrcnn_benchmark.modeling import registry
from maskrcnn_benchmark.modeling.utils import registered


def _kaiming(layer):
    nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
    nn.init.constant_(layer.bias, 0)


@registry.ROI_MASK_PREDICTOR.register("MaskRCNNC4Predictor")
class MaskRCNNC4Predictor(nn.Module):
    """2x upsampling deconv (``dim_reduced`` channels) + ReLU, then a 1x1 conv with one logit map
    per class (``num_classes``, background included)."""

    @configurable
    def __init__(self, in_channels, num_classes, dim_reduced):
        super(MaskRCNNC4Predictor, self).__init__()
        self.conv5_mask = nn.ConvTranspose2d(in_channels, dim_reduced, kernel_size=2, stride=2, padding=0)
        self.mask_fcn_logits = nn.Conv2d(dim_reduced, num_classes, kernel_size=1, stride=1, padding=0)
        _kaiming(self.conv5_mask)
        _kaiming(self.mask_fcn_logits)

    @classmethod
    def from_config(cls, cfg, in_channels):
        return {
            "in_channels": in_channels,
            "num_classes": cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES,
            "dim_reduced": cfg.MODEL.ROI_MASK_HEAD.CONV_LAYERS[-1],
        }

    def forward(self, x):
        return self.mask_fcn_logits(F.relu(self.conv5_mask(x)))


@registry.ROI_MASK_PREDICTOR.register("MaskRCNNConv1x1Predictor")
class MaskRCNNConv1x1Predictor(nn.Module):
    """A 1x1 conv with one logit map per class, at the feature resolution."""

    @configurable
    def __init__(self, in_channels, num_classes):
        super(MaskRCNNConv1x1Predictor, self).__init__()
        self.mask_fcn_logits = nn.Conv2d(in_channels, num_classes, kernel_size=1, stride=1, padding=0)
        _kaiming(self.mask_fcn_logits)

    @classmethod
    def from_config(cls, cfg, in_channels):
        return {"in_channels": in_channels, "num_classes": cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES}

    def forward(self, x):
        return self.mask_fcn_logits(x)


def make_roi_mask_predictor(cfg, in_channels):
    name = cfg.MODEL.ROI_MASK_HEAD.PREDICTOR
    return registered(registry.ROI_MASK_PREDICTOR, name, "MODEL.ROI_MASK_HEAD.PREDICTOR")(cfg, in_channels)
