"""Per-RoI features for the mask head."""
from torch import nn
from torch.nn import functional as F

from maskrcnn_benchmark.modeling import registry
from maskrcnn_benchmark.modeling.make_layers import make_conv3x3
from maskrcnn_benchmark.modeling.poolers import make_pooler
from maskrcnn_benchmark.modeling.roi_heads.box_head.roi_box_feature_extractors import (
    ResNet50Conv5ROIFeatureExtractor,
)


@registry.ROI_MASK_FEATURE_EXTRACTORS.register("ResNet50Conv5ROIFeatureExtractor")
def _resnet_conv5_mask_extractor(cfg, in_channels):
    # C4: the res5 stage on RoIs pooled with the mask head's pooler settings.
    return ResNet50Conv5ROIFeatureExtractor(cfg, in_channels, head_name="ROI_MASK_HEAD")


@registry.ROI_MASK_FEATURE_EXTRACTORS.register("MaskRCNNFPNFeatureExtractor")
class MaskRCNNFPNFeatureExtractor(nn.Module):
    """RoIs pooled on their FPN level, then ``CONV_LAYERS`` 3x3 convs + ReLU (named mask_fcn1..)."""

    def __init__(self, cfg, in_channels):
        super(MaskRCNNFPNFeatureExtractor, self).__init__()
        head = cfg.MODEL.ROI_MASK_HEAD
        self.pooler = make_pooler(cfg, "ROI_MASK_HEAD")
        self.blocks = []
        channels = in_channels
        for index, layer_channels in enumerate(head.CONV_LAYERS, 1):
            name = "mask_fcn{}".format(index)
            conv = make_conv3x3(
                channels, layer_channels, dilation=head.DILATION, stride=1, use_gn=head.USE_GN, config=cfg
            )
            self.add_module(name, conv)
            self.blocks.append(name)
            channels = layer_channels
        self.out_channels = channels

    def forward(self, x, proposals):
        x = self.pooler(x, proposals)
        for name in self.blocks:
            x = F.relu(getattr(self, name)(x))
        return x


def make_roi_mask_feature_extractor(cfg, in_channels):
    name = cfg.MODEL.ROI_MASK_HEAD.FEATURE_EXTRACTOR
    if name not in registry.ROI_MASK_FEATURE_EXTRACTORS:
        raise KeyError(
            "MODEL.ROI_MASK_HEAD.FEATURE_EXTRACTOR: unknown {!r}; registered: {}".format(
                name, sorted(registry.ROI_MASK_FEATURE_EXTRACTORS.keys())
            )
        )
    return registry.ROI_MASK_FEATURE_EXTRACTORS[name](cfg, in_channels)
