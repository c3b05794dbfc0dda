"""FCOS (registered dense head "FCOS"; the yaml switch MODEL.FCOS_ON selects it).

Per point of P3-P7 the head predicts C class logits, the distances (l, t, r, b) to the box sides
and a centerness logit, through two GroupNorm conv towers. The distances come out in pixels: with
NORM_REG_TARGETS they are relu(scale_k * x) * stride_k, otherwise exp(scale_k * x), where scale_k
is a learnable scalar per level.
"""
import torch
from torch import nn
from torch.nn import functional as F

from maskrcnn_benchmark.modeling import registry
from maskrcnn_benchmark.config.configurable import configurable
from maskrcnn_benchmark.modeling.dense_heads.head import DenseHead, conv_head_config, dense_head_config
from maskrcnn_benchmark.modeling.dense_heads.points import PointGenerator
from maskrcnn_benchmark.modeling.dense_heads.tower import Scale, init_dense_head_, make_tower
from maskrcnn_benchmark.modeling.rpn.fcos.inference import fcos_postprocessor
from maskrcnn_benchmark.modeling.rpn.fcos.loss import FCOSLossComputation
from maskrcnn_benchmark.structures.box_convention import (
    DEFAULT_BOX_CONVENTION,
    box_convention_from_config,
    common_box_convention,
)


class FCOSHead(nn.Module):
    """``forward(features) -> (logits, box_regression, centerness)``, lists over levels."""

    @configurable
    def __init__(self, in_channels, num_classes, strides, num_convs=4, prior_prob=0.01, norm_reg_targets=False,
                 centerness_on_reg=False):
        super().__init__()
        self.num_classes = num_classes
        self.strides = tuple(strides)
        self.norm_reg_targets = norm_reg_targets
        self.centerness_on_reg = centerness_on_reg

        self.cls_tower = make_tower(in_channels, num_convs, use_gn=True, owner="MODEL.FCOS")
        self.bbox_tower = make_tower(in_channels, num_convs, use_gn=True, owner="MODEL.FCOS")
        self.cls_logits = nn.Conv2d(in_channels, num_classes, 3, padding=1)
        self.bbox_pred = nn.Conv2d(in_channels, 4, 3, padding=1)
        self.centerness = nn.Conv2d(in_channels, 1, 3, padding=1)
        self.scales = nn.ModuleList([Scale(1.0) for _ in self.strides])
        init_dense_head_(self, self.cls_logits, prior_prob)

    @classmethod
    def from_config(cls, cfg, in_channels):
        fcos = cfg.MODEL.FCOS
        if fcos.USE_DCN_IN_TOWER:
            raise ValueError("MODEL.FCOS.USE_DCN_IN_TOWER: deformable convolutions are not supported")
        return dict(
            conv_head_config(fcos, in_channels),
            strides=tuple(fcos.FPN_STRIDES),
            norm_reg_targets=fcos.NORM_REG_TARGETS,
            centerness_on_reg=fcos.CENTERNESS_ON_REG,
        )

    def forward(self, x):
        logits, bbox_reg, centerness = [], [], []
        for level, feature in enumerate(x):
            cls_features = self.cls_tower(feature)
            box_features = self.bbox_tower(feature)
            logits.append(self.cls_logits(cls_features))
            centerness.append(self.centerness(box_features if self.centerness_on_reg else cls_features))
            raw = self.scales[level](self.bbox_pred(box_features))
            if self.norm_reg_targets:
                bbox_reg.append(F.relu(raw) * self.strides[level])
            else:
                bbox_reg.append(torch.exp(raw))
        return logits, bbox_reg, centerness


@registry.DENSE_HEADS.register("FCOS")
class FCOSModule(DenseHead):
    """Head, points, FCOS assignment, losses and post-processing; box areas (which box a point
    takes) and clipping in the box ``convention``."""
    config_group = "FCOS"
    num_loss_terms = 3  # classification, box, centerness

    @configurable
    def __init__(self, head, settings, center_sampling_radius=0.0, iou_loss_type="iou", postprocess=None,
                 size_divisibility=0, convention=DEFAULT_BOX_CONVENTION):
        super().__init__("fcos", settings, head, PointGenerator(head.strides), size_divisibility)
        postprocess = dict(postprocess or {})
        convention = common_box_convention("FCOSModule", convention=convention,
                                           postprocess=postprocess.pop("convention", None))
        self.box_selector_test = fcos_postprocessor(**postprocess, convention=convention)
        self.loss_evaluator = FCOSLossComputation(
            self.soft_strategy, head.strides, center_sampling_radius, iou_loss_type, head.norm_reg_targets,
            hard_strategy=self.hard_strategy, convention=convention,
        )

    @classmethod
    def from_config(cls, cfg, in_channels):
        fcos = cfg.MODEL.FCOS
        return dict(dense_head_config(cfg, fcos), head=FCOSHead(cfg, in_channels),
                    center_sampling_radius=fcos.CENTER_SAMPLING_RADIUS, iou_loss_type=fcos.IOU_LOSS_TYPE,
                    convention=box_convention_from_config(cfg))

    def assign(self, positions_per_level, target):
        return self.loss_evaluator.assign(positions_per_level, target)

    def losses(self, predictions, positions_per_level, targets):
        loss_cls, loss_reg, loss_centerness = self.loss_evaluator(positions_per_level, *predictions, targets)
        # The regression loss guides the classification loss; centerness is left as it is.
        return self.scaled_losses("loss_cls", loss_cls, "loss_reg", loss_reg, loss_centerness=loss_centerness)

    def classification_layer(self):
        return self.head.cls_logits


def build_fcos(cfg, in_channels):
    return FCOSModule(cfg, in_channels)
