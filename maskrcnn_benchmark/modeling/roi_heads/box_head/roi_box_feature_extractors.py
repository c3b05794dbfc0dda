"""Per-RoI features for the box head: pooled and passed through res5 (C4), two FCs or convs + FC.

GroupNorm layers take their settings from ``gn`` (a make_layers.GroupNormSettings; None gives
maskrcnn-benchmark's defaults).
"""
from torch import nn
from torch.nn import functional as F

from maskrcnn_benchmark.config.configurable import configurable
from maskrcnn_benchmark.layers.lean_linear import lean_linear
from maskrcnn_benchmark.modeling import registry
from maskrcnn_benchmark.modeling.backbone.resnet import ResNetHead, StageSpec
from maskrcnn_benchmark.modeling.make_layers import GroupNormSettings, group_norm, make_fc
from maskrcnn_benchmark.modeling.poolers import make_pooler
from maskrcnn_benchmark.modeling.utils import registered


def pooled_size(pooler, in_channels):
    """Number of values per RoI that ``pooler`` produces on ``in_channels`` maps."""
    height, width = pooler.output_size
    return in_channels * height * width


def pooled_head_config(cfg, head_name, in_channels):
    """What the pooling feature extractors read alike from ``MODEL.<head_name>``: their pooler,
    input width and GroupNorm use and settings."""
    return {
        "pooler": make_pooler(cfg, head_name),
        "in_channels": in_channels,
        "use_gn": cfg.MODEL[head_name].USE_GN,
        "gn": GroupNormSettings.from_config(cfg),
    }


@registry.ROI_BOX_FEATURE_EXTRACTORS.register("ResNet50Conv5ROIFeatureExtractor")
class ResNet50Conv5ROIFeatureExtractor(nn.Module):
    """C4 detectors: RoIs pooled from res4 run through the res5 stage (stride 2)."""

    @configurable
    def __init__(self, pooler, head):
        super(ResNet50Conv5ROIFeatureExtractor, self).__init__()
        self.pooler = pooler
        self.head = head
        self.out_channels = head.out_channels

    @classmethod
    def from_config(cls, cfg, in_channels, head_name="ROI_BOX_HEAD"):
        resnets = cfg.MODEL.RESNETS
        return {
            "pooler": make_pooler(cfg, head_name),
            "head": ResNetHead(
                block_module=resnets.TRANS_FUNC,
                stages=(StageSpec(index=4, block_count=3, return_features=False),),
                num_groups=resnets.NUM_GROUPS,
                width_per_group=resnets.WIDTH_PER_GROUP,
                stride_in_1x1=resnets.STRIDE_IN_1X1,
                stride_init=None,
                res2_out_channels=resnets.RES2_OUT_CHANNELS,
                dilation=resnets.RES5_DILATION,
                gn=GroupNormSettings.from_config(cfg),
            ),
        }

    def forward(self, x, proposals):
        return self.head(self.pooler(x, proposals))


def _fc_releasing_input(fc, x):
    """``fc(x)`` for a ``make_fc`` layer (Linear, or Linear + GN), with the Linear's backward
    freeing ``x`` early: fc6's K x 12544 pooled input is the head's largest buffer."""
    linear = fc[0] if isinstance(fc, nn.Sequential) else fc
    y = lean_linear(x, linear.weight, linear.bias)
    return fc[1](y) if isinstance(fc, nn.Sequential) else y


@registry.ROI_BOX_FEATURE_EXTRACTORS.register("FPN2MLPFeatureExtractor")
class FPN2MLPFeatureExtractor(nn.Module):
    """FPN detectors: RoIs pooled on their level, then two fully connected layers (fc6, fc7)."""

    @configurable
    def __init__(self, pooler, in_channels, representation_size, use_gn=False, gn=None):
        super(FPN2MLPFeatureExtractor, self).__init__()
        self.pooler = pooler
        self.fc6 = make_fc(pooled_size(pooler, in_channels), representation_size, use_gn, gn=gn)
        self.fc7 = make_fc(representation_size, representation_size, use_gn, gn=gn)
        self.out_channels = representation_size

    @classmethod
    def from_config(cls, cfg, in_channels):
        return {**pooled_head_config(cfg, "ROI_BOX_HEAD", in_channels),
                "representation_size": cfg.MODEL.ROI_BOX_HEAD.MLP_HEAD_DIM}

    def forward(self, x, proposals):
        x = self.pooler(x, proposals).flatten(start_dim=1)
        # In place: neither fc (nor GN) keeps its output for backward, and each fc keeps its
        # input, so ReLU can reuse the fc output's memory (two K x MLP_HEAD_DIM buffers fewer).
        x = F.relu(_fc_releasing_input(self.fc6, x), inplace=True)
        return F.relu(self.fc7(x), inplace=True)


@registry.ROI_BOX_FEATURE_EXTRACTORS.register("FPNXconv1fcFeatureExtractor")
class FPNXconv1fcFeatureExtractor(nn.Module):
    """FPN detectors: RoIs pooled, ``num_stacked_convs`` 3x3 convs (+ GN), then one FC."""

    @configurable
    def __init__(self, pooler, in_channels, conv_head_dim, num_stacked_convs, representation_size, dilation=1,
                 use_gn=False, gn=None):
        super(FPNXconv1fcFeatureExtractor, self).__init__()
        self.pooler = pooler
        layers = []
        channels = in_channels
        for _ in range(num_stacked_convs):
            conv = nn.Conv2d(channels, conv_head_dim, kernel_size=3, stride=1, padding=dilation, dilation=dilation,
                             bias=not use_gn)
            nn.init.normal_(conv.weight, std=0.01)
            if conv.bias is not None:
                nn.init.constant_(conv.bias, 0)
            layers.append(conv)
            if use_gn:
                layers.append(group_norm(conv_head_dim, gn=gn))
            layers.append(nn.ReLU(inplace=True))
            channels = conv_head_dim
        self.xconvs = nn.Sequential(*layers)
        self.fc6 = make_fc(pooled_size(pooler, channels), representation_size, use_gn=False)
        self.out_channels = representation_size

    @classmethod
    def from_config(cls, cfg, in_channels):
        head = cfg.MODEL.ROI_BOX_HEAD
        return {
            **pooled_head_config(cfg, "ROI_BOX_HEAD", in_channels),
            "conv_head_dim": head.CONV_HEAD_DIM,
            "num_stacked_convs": head.NUM_STACKED_CONVS,
            "representation_size": head.MLP_HEAD_DIM,
            "dilation": head.DILATION,
        }

    def forward(self, x, proposals):
        x = self.xconvs(self.pooler(x, proposals))
        return F.relu(self.fc6(x.flatten(start_dim=1)), inplace=True)


def make_roi_box_feature_extractor(cfg, in_channels):
    name = cfg.MODEL.ROI_BOX_HEAD.FEATURE_EXTRACTOR
    extractor = registered(registry.ROI_BOX_FEATURE_EXTRACTORS, name, "MODEL.ROI_BOX_HEAD.FEATURE_EXTRACTOR")
    return extractor(cfg, in_channels)
