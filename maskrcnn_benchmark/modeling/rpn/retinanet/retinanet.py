"""RetinaNet (registered dense head "RetinaNet"; the yaml switch MODEL.RETINANET_ON selects it).

The head predicts, on every FPN level P3-P7, C class logits and 4 box deltas for each of the
A = len(ASPECT_RATIOS) * SCALES_PER_OCTAVE anchors of a location, through two conv towers.
"""
import torch
from torch import nn

from maskrcnn_benchmark.modeling import registry
from maskrcnn_benchmark.modeling.box_coder import BoxCoder
from maskrcnn_benchmark.config.configurable import configurable
from maskrcnn_benchmark.modeling.dense_heads.head import DenseHead, conv_head_config, dense_head_config
from maskrcnn_benchmark.modeling.dense_heads.postprocess import DensePostProcessor, class_probability
from maskrcnn_benchmark.modeling.dense_heads.tower import init_dense_head_, make_tower
from maskrcnn_benchmark.modeling.matcher import Matcher
from maskrcnn_benchmark.modeling.rpn.anchor_generator import make_anchor_generator_retinanet
from maskrcnn_benchmark.modeling.rpn.retinanet.inference import BOX_CODER_WEIGHTS
from maskrcnn_benchmark.modeling.rpn.retinanet.loss import RetinaNetLossComputation, generate_retinanet_labels
from maskrcnn_benchmark.structures.box_convention import common_box_convention


class RetinaNetHead(nn.Module):
    """Two towers of ``num_convs`` x (conv3x3 + ReLU), shared by the levels, then per anchor C class
    logits and 4 box deltas. ``forward(features) -> (logits, box_regression)``, lists over levels."""

    @configurable
    def __init__(self, in_channels, num_classes, num_anchors, num_convs=4, prior_prob=0.01):
        super().__init__()
        self.num_classes = num_classes
        self.cls_tower = make_tower(in_channels, num_convs)
        self.bbox_tower = make_tower(in_channels, num_convs)
        self.cls_logits = nn.Conv2d(in_channels, num_anchors * num_classes, 3, padding=1)
        self.bbox_pred = nn.Conv2d(in_channels, num_anchors * 4, 3, padding=1)
        init_dense_head_(self, self.cls_logits, prior_prob)

    @classmethod
    def from_config(cls, cfg, in_channels):
        retina = cfg.MODEL.RETINANET
        num_anchors = len(retina.ASPECT_RATIOS) * retina.SCALES_PER_OCTAVE
        return dict(conv_head_config(retina, in_channels), num_anchors=num_anchors)

    def forward(self, x):
        logits = [self.cls_logits(self.cls_tower(feature)) for feature in x]
        bbox_reg = [self.bbox_pred(self.bbox_tower(feature)) for feature in x]
        return logits, bbox_reg


@registry.DENSE_HEADS.register("RetinaNet")
class RetinaNetModule(DenseHead):
    """Head, anchors, IoU assignment, focal / CE + smooth-L1 losses, post-processing; box coding,
    IoUs, clipping and NMS in the box convention of the anchors."""
    config_group = "RETINANET"

    @configurable
    def __init__(self, head, anchor_generator, settings, fg_iou_threshold=0.5, bg_iou_threshold=0.4,
                 bbox_reg_beta=0.11, bbox_reg_weight=4.0, postprocess=None, size_divisibility=0):
        super().__init__("retina", settings, head, anchor_generator, size_divisibility)
        postprocess = dict(postprocess or {})
        convention = common_box_convention(
            "RetinaNetModule", anchors=anchor_generator.convention, postprocess=postprocess.pop("convention", None))
        self.box_coder = BoxCoder(weights=BOX_CODER_WEIGHTS, convention=convention)
        # maskrcnn-benchmark's RetinaNet runs its class-wise NMS with the convention's tie rule
        self.box_selector_test = DensePostProcessor(self.box_coder.decode, class_probability, **postprocess,
                                                    convention=convention,
                                                    nms_suppresses_ties=convention.nms_suppresses_ties)
        matcher = Matcher(fg_iou_threshold, bg_iou_threshold, allow_low_quality_matches=True)
        self.loss_evaluator = RetinaNetLossComputation(
            matcher, self.box_coder, generate_retinanet_labels, self.soft_strategy, bbox_reg_beta=bbox_reg_beta,
            regress_norm=bbox_reg_weight, hard_strategy=self.hard_strategy,
        )

    @classmethod
    def from_config(cls, cfg, in_channels):
        retina = cfg.MODEL.RETINANET
        return dict(
            dense_head_config(cfg, retina),
            head=RetinaNetHead(cfg, in_channels),
            anchor_generator=make_anchor_generator_retinanet(cfg),
            fg_iou_threshold=retina.FG_IOU_THRESHOLD,
            bg_iou_threshold=retina.BG_IOU_THRESHOLD,
            bbox_reg_beta=retina.BBOX_REG_BETA,
            bbox_reg_weight=retina.BBOX_REG_WEIGHT,
        )

    @property
    def anchor_generator(self):
        return self.position_generator

    def assign(self, positions_per_level, target):
        return self.loss_evaluator.assign(torch.cat(positions_per_level), target)

    def losses(self, predictions, positions_per_level, targets):
        box_cls, box_regression = predictions
        anchors = torch.cat(positions_per_level)
        loss_cls, loss_reg = self.loss_evaluator.losses(anchors, box_cls, box_regression, targets)
        # The box loss guides the classification loss (identity with the default GUIDED "none").
        return self.scaled_losses("loss_retina_cls", loss_cls, "loss_retina_reg", loss_reg)

    def classification_layer(self):
        return self.head.cls_logits


def build_retinanet(cfg, in_channels):
    return RetinaNetModule(cfg, in_channels)
