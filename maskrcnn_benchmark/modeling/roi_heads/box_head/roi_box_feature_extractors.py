"""Per-RoI features for the box head: pooled and passed through res5 (C4), two FCs or convs + FC."""
import torch
from torch import nn
from torch.nn import functional as F

from maskrcnn_benchmark.layers.lean_linear import lean_linear
from maskrcnn_benchmark.modeling import registry
from maskrcnn_benchmark.modeling.backbone.resnet import ResNetHead, StageSpec
from maskrcnn_benchmark.modeling.make_layers import group_norm, make_fc
from maskrcnn_benchmark.modeling.poolers import make_pooler


@registry.ROI_BOX_FEATURE_EXTRACTORS.register("ResNet50Conv5ROIFeatureExtractor")
class ResNet50Conv5ROIFeatureExtractor(nn.Module):
    """C4 detectors: RoIs pooled from res4 run through the res5 stage (stride 2)."""

    def __init__(self, config, in_channels, head_name="ROI_BOX_HEAD"):
        super(ResNet50Conv5ROIFeatureExtractor, self).__init__()
        self.pooler = make_pooler(config, head_name)
        resnets = config.MODEL.RESNETS
        self.head = ResNetHead(
            block_module=resnets.TRANS_FUNC,
            stages=(StageSpec(index=4, block_count=3, return_features=False),),
            num_groups=resnets.NUM_GROUPS,
            width_per_group=resnets.WIDTH_PER_GROUP,
            stride_in_1x1=resnets.STRIDE_IN_1X1,
            stride_init=None,
            res2_out_channels=resnets.RES2_OUT_CHANNELS,
            dilation=resnets.RES5_DILATION,
        )
        self.out_channels = self.head.out_channels

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

    def __init__(self, cfg, in_channels):
        super(FPN2MLPFeatureExtractor, self).__init__()
        head = cfg.MODEL.ROI_BOX_HEAD
        self.pooler = make_pooler(cfg, "ROI_BOX_HEAD")
        input_size = in_channels * head.POOLER_RESOLUTION ** 2
        self.fc6 = make_fc(input_size, head.MLP_HEAD_DIM, head.USE_GN, config=cfg)
        self.fc7 = make_fc(head.MLP_HEAD_DIM, head.MLP_HEAD_DIM, head.USE_GN, config=cfg)
        self.out_channels = head.MLP_HEAD_DIM

    def forward(self, x, proposals):
        x = self.pooler(x, proposals).flatten(start_dim=1)
        # In place: neither fc (nor GN) keeps its output for backward, and each fc keeps its
        # input, so ReLU can reuse the fc output's memory (two K x MLP_HEAD_DIM buffers fewer).
        x = F.relu(_fc_releasing_input(self.fc6, x), inplace=True)
        return F.relu(self.fc7(x), inplace=True)


@registry.ROI_BOX_FEATURE_EXTRACTORS.register("FPNXconv1fcFeatureExtractor")
class FPNXconv1fcFeatureExtractor(nn.Module):
    """FPN detectors: RoIs pooled, ``NUM_STACKED_CONVS`` 3x3 convs (+ GN), then one FC."""

    def __init__(self, cfg, in_channels):
        super(FPNXconv1fcFeatureExtractor, self).__init__()
        head = cfg.MODEL.ROI_BOX_HEAD
        self.pooler = make_pooler(cfg, "ROI_BOX_HEAD")
        layers = []
        channels = in_channels
        for _ in range(head.NUM_STACKED_CONVS):
            conv = nn.Conv2d(
                channels,
                head.CONV_HEAD_DIM,
                kernel_size=3,
                stride=1,
                padding=head.DILATION,
                dilation=head.DILATION,
                bias=not head.USE_GN,
            )
            nn.init.normal_(conv.weight, std=0.01)
            if conv.bias is not None:
                nn.init.constant_(conv.bias, 0)
            layers.append(conv)
            if head.USE_GN:
                layers.append(group_norm(head.CONV_HEAD_DIM, config=cfg))
            layers.append(nn.ReLU(inplace=True))
            channels = head.CONV_HEAD_DIM
        self.xconvs = nn.Sequential(*layers)
        self.fc6 = make_fc(channels * head.POOLER_RESOLUTION ** 2, head.MLP_HEAD_DIM, use_gn=False)
        self.out_channels = head.MLP_HEAD_DIM

    def forward(self, x, proposals):
        x = self.xconvs(self.pooler(x, proposals))
        return F.relu(self.fc6(x.flatten(start_dim=1)), inplace=True)


def make_roi_box_feature_extractor(cfg, in_channels):
    name = cfg.MODEL.ROI_BOX_HEAD.FEATURE_EXTRACTOR
    if name not in registry.ROI_BOX_FEATURE_EXTRACTORS:
        raise KeyError(
            "MODEL.ROI_BOX_HEAD.FEATURE_EXTRACTOR: unknown {!r}; registered: {}".format(
                name, sorted(registry.ROI_BOX_FEATURE_EXTRACTORS.keys())
            )
        )
    return registry.ROI_BOX_FEATURE_EXTRACTORS[name](cfg, in_channels)
