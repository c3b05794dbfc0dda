"""The dense head of ATSS and PAA.

Shared over the FPN levels: a classification tower and a box tower (``NUM_CONVS`` x conv3x3 + GN +
ReLU, the last conv deformable when ``USE_DCN_IN_TOWER``), then per anchor C class logits, 4 box
deltas (times a learnable per-level scale) and one quality logit predicted from the box tower:
centre-ness for ATSS, IoU for PAA.
"""
import torch
from torch import nn

from maskrcnn_benchmark.modeling.backbone.deform_conv import DFConv2d
from maskrcnn_benchmark.modeling.sampling_free import prior_to_bias

GN_GROUPS = 32


class LevelScale(nn.Module):
    """A learnable scalar per pyramid level, so one shared regressor fits every stride."""

    def __init__(self, init_value=1.0):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(float(init_value)))

    def forward(self, x):
        return x * self.scale


def make_tower(in_channels, num_convs, use_dcn, group_name):
    if in_channels % GN_GROUPS:
        raise ValueError(
            f"{group_name}: the head's GroupNorm needs channels divisible by {GN_GROUPS}, "
            f"got MODEL.RESNETS.BACKBONE_OUT_CHANNELS={in_channels}"
        )
    layers = []
    for index in range(num_convs):
        if use_dcn and index == num_convs - 1:
            # Deformable sampling where the tower's receptive field is largest (as in ATSS).
            conv = DFConv2d(in_channels, in_channels, with_modulated_dcn=True, kernel_size=3, bias=True)
        else:
            conv = nn.Conv2d(in_channels, in_channels, kernel_size=3, padding=1)
        layers += [conv, nn.GroupNorm(GN_GROUPS, in_channels), nn.ReLU()]
    return nn.Sequential(*layers)


class ATSSHead(nn.Module):
    """``forward(features) -> (logits, box_regression, quality)``, each a list over levels."""

    def __init__(self, head_cfg, in_channels, group_name="MODEL.ATSS"):
        super().__init__()
        num_classes = head_cfg.NUM_CLASSES - 1  # NUM_CLASSES counts the background
        num_anchors = len(head_cfg.ASPECT_RATIOS) * head_cfg.SCALES_PER_OCTAVE
        self.num_classes = num_classes

        self.cls_tower = make_tower(in_channels, head_cfg.NUM_CONVS, head_cfg.USE_DCN_IN_TOWER, group_name)
        self.bbox_tower = make_tower(in_channels, head_cfg.NUM_CONVS, head_cfg.USE_DCN_IN_TOWER, group_name)
        self.cls_logits = nn.Conv2d(in_channels, num_anchors * num_classes, 3, padding=1)
        self.bbox_pred = nn.Conv2d(in_channels, num_anchors * 4, 3, padding=1)
        self.quality_pred = nn.Conv2d(in_channels, num_anchors, 3, padding=1)
        self.scales = nn.ModuleList(LevelScale() for _ in head_cfg.ANCHOR_STRIDES)

        for module in self.modules():
            if isinstance(module, nn.Conv2d) and not self._is_offset_predictor(module):
                nn.init.normal_(module.weight, std=0.01)
                nn.init.constant_(module.bias, 0)
            elif isinstance(module, DFConv2d):
                nn.init.normal_(module.conv.weight, std=0.01)
                nn.init.constant_(module.conv.bias, 0)
        # Every anchor starts at p = PRIOR_PROB; "optimal" bias init overwrites this later.
        nn.init.constant_(self.cls_logits.bias, prior_to_bias(head_cfg.PRIOR_PROB))

    def _is_offset_predictor(self, conv):
        # DFConv2d's offset conv starts at zero (regular grid); keep it that way.
        return any(isinstance(m, DFConv2d) and m.offset is conv for m in self.modules())

    def forward(self, features):
        logits, box_regression, quality = [], [], []
        for level, feature in enumerate(features):
            cls_feature = self.cls_tower(feature)
            box_feature = self.bbox_tower(feature)
            logits.append(self.cls_logits(cls_feature))
            box_regression.append(self.scales[level](self.bbox_pred(box_feature)))
            quality.append(self.quality_pred(box_feature))
        return logits, box_regression, quality
