"""Per-RoI features for the mask head."""
from torch import nn
from torch.nn import functional as F

from maskrcnn_benchmark.config.configurable import configurable
from maskrcnn_benchmark.modeling import registry
from maskrcnn_benchmark.modeling.make_layers import make_conv3x3
from maskrcnn_benchmark.modeling.roi_heads.box_head.roi_box_feature_extractors import (
    ResNet50Conv5ROIFeatureExtractor,
    pooled_head_config,
)
from maskrcnn_benchmark.modeling.utils import registered


@registry.ROI_MASK_FEATURE_EXTRACTORS.register("ResNet50Conv5ROIFeatureExtractor")
def _resnet_conv5_mask_extractor(cfg, in_channels):
    # C4: the res5 stage on RoIs pooled with the mask head's pooler settings.
    return ResNet50Conv5ROIFeatureExtractor(cfg, in_channels, head_name="ROI_MASK_HEAD")


@registry.ROI_MASK_FEATURE_EXTRACTORS.register("MaskRCNNFPNFeatureExtractor")
class MaskRCNNFPNFeatureExtractor(nn.Module):
    """RoIs pooled on their FPN level, then one 3x3 conv + ReLU per entry of ``conv_layers``
    (its output channels), named mask_fcn1, mask_fcn2, ..."""

    @configurable
    def __init__(self, pooler, in_channels, conv_layers, dilation=1, use_gn=False, gn=None):
        super(MaskRCNNFPNFeatureExtractor, self).__init__()
        self.pooler = pooler
        self.blocks = []
        channels = in_channels
        for index, layer_channels in enumerate(conv_layers, 1):
            name = "mask_fcn{}".format(index)
            conv = make_conv3x3(channels, layer_channels, dilation=dilation, stride=1, use_gn=use_gn, gn=gn)
            self.add_module(name, conv)
            self.blocks.append(name)
            channels = layer_channels
        self.out_channels = channels

    @classmethod
    def from_config(cls, cfg, in_channels):
        head = cfg.MODEL.ROI_MASK_HEAD
        return {**pooled_head_config(cfg, "ROI_MASK_HEAD", in_channels),
                "conv_layers": tuple(head.CONV_LAYERS), "dilation": head.DILATION}

    def forward(self, x, proposals):
        x = self.pooler(x, proposals)
        for name in self.blocks:
            x = F.relu(getattr(self, name)(x))
        return x


def make_roi_mask_feature_extractor(cfg, in_channels):
    name = cfg.MODEL.ROI_MASK_HEAD.FEATURE_EXTRACTOR
    extractor = registered(registry.ROI_MASK_FEATURE_EXTRACTORS, name, "MODEL.ROI_MASK_HEAD.FEATURE_EXTRACTOR")
    return extractor(cfg, in_channels)
