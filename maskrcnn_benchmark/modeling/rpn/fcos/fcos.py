"""FCOS head and module (built by build_rpn when MODEL.FCOS_ON).

Per point of P3-P7 the head predicts C class logits, the distances (l, t, r, b) to the box sides
and a centerness logit, through two GroupNorm conv towers. The distances come out in pixels: with
NORM_REG_TARGETS they are relu(scale_k * x) * stride_k, otherwise exp(scale_k * x), where scale_k
is a learnable scalar per level.
"""
import torch
from torch import nn
from torch.nn import functional as F

from maskrcnn_benchmark.modeling.rpn.anchor_generator import feature_grid_sizes, padded_image_size
from maskrcnn_benchmark.modeling.rpn.fcos.inference import make_fcos_postprocessor
from maskrcnn_benchmark.modeling.rpn.fcos.locations import locations_for_sizes
from maskrcnn_benchmark.modeling.rpn.fcos.loss import make_fcos_loss_evaluator
from maskrcnn_benchmark.modeling.rpn.retinanet.sampling_free_hooks import (
    make_one_stage_loss_scaler,
    set_bias_to_prior,
)
from maskrcnn_benchmark.modeling.sampling_free import prior_to_bias

GN_GROUPS = 32


class Scale(nn.Module):
    """A learnable scalar multiplier (one per FPN level, so levels share the head's convs)."""

    def __init__(self, init_value=1.0):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(float(init_value)))

    def forward(self, x):
        return x * self.scale


def make_gn_tower(channels, num_convs):
    if channels % GN_GROUPS != 0:
        raise ValueError(
            "FCOS towers use GroupNorm({}, C): the FPN width (MODEL.RESNETS.BACKBONE_OUT_CHANNELS) "
            "must be a multiple of {}, got {}".format(GN_GROUPS, GN_GROUPS, channels)
        )
    layers = []
    for _ in range(num_convs):
        layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.GroupNorm(GN_GROUPS, channels), nn.ReLU()]
    return nn.Sequential(*layers)


class FCOSHead(nn.Module):
    def __init__(self, cfg, in_channels):
        super().__init__()
        fcos_cfg = cfg.MODEL.FCOS
        if fcos_cfg.USE_DCN_IN_TOWER:
            raise ValueError("MODEL.FCOS.USE_DCN_IN_TOWER: deformable convolutions are not supported")
        num_classes = fcos_cfg.NUM_CLASSES - 1  # NUM_CLASSES counts the background
        self.strides = tuple(fcos_cfg.FPN_STRIDES)
        self.norm_reg_targets = fcos_cfg.NORM_REG_TARGETS
        self.centerness_on_reg = fcos_cfg.CENTERNESS_ON_REG

        self.cls_tower = make_gn_tower(in_channels, fcos_cfg.NUM_CONVS)
        self.bbox_tower = make_gn_tower(in_channels, fcos_cfg.NUM_CONVS)
        self.cls_logits = nn.Conv2d(in_channels, num_classes, 3, padding=1)
        self.bbox_pred = nn.Conv2d(in_channels, 4, 3, padding=1)
        self.centerness = nn.Conv2d(in_channels, 1, 3, padding=1)
        self.scales = nn.ModuleList([Scale(1.0) for _ in self.strides])

        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, std=0.01)
                nn.init.constant_(module.bias, 0)
        nn.init.constant_(self.cls_logits.bias, float(prior_to_bias(fcos_cfg.PRIOR_PROB)))

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


class FCOSModule(nn.Module):
    """Head, points, losses and post-processing; the detector's only stage after the backbone."""

    sampling_free_name = "fcos"
    sampling_free_stage = "ONE_STAGE"

    def __init__(self, cfg, in_channels):
        super().__init__()
        self.cfg = cfg.clone()
        self.head = FCOSHead(cfg, in_channels)
        self.strides = tuple(cfg.MODEL.FCOS.FPN_STRIDES)
        self.size_divisibility = cfg.DATALOADER.SIZE_DIVISIBILITY
        self.box_selector_test = make_fcos_postprocessor(cfg)
        self.loss_evaluator = make_fcos_loss_evaluator(cfg)
        self.loss_scaler = make_one_stage_loss_scaler(cfg, self.sampling_free_name)

    def forward(self, images, features, targets=None):
        box_cls, box_regression, centerness = self.head(features)
        feature_sizes = [tuple(f.shape[-2:]) for f in features]
        locations = locations_for_sizes(feature_sizes, self.strides, device=features[0].device)
        if self.training:
            return locations, self._losses(locations, box_cls, box_regression, centerness, targets)
        boxes = self.box_selector_test(locations, box_cls, box_regression, centerness, images.image_sizes)
        return boxes, {}

    def _losses(self, locations, box_cls, box_regression, centerness, targets):
        loss_cls, loss_reg, loss_centerness = self.loss_evaluator(
            locations, box_cls, box_regression, centerness, targets
        )
        # The regression loss guides the classification loss; centerness is left as it is.
        loss_cls, extras = self.loss_scaler(loss_cls, loss_reg)
        losses = {"loss_cls": loss_cls, "loss_reg": loss_reg, "loss_centerness": loss_centerness}
        losses.update(extras)
        return losses

    @torch.no_grad()
    def count_samples(self, targets, image_sizes):
        """[N, N^f] for the optimal bias: N = points x classes, N^f = positive points.

        ``image_sizes`` are (height, width) of the resized images, as in ImageList.image_sizes.
        Counted with this head's points and assignment, without a network forward.
        """
        num_classes = self.cfg.MODEL.FCOS.NUM_CLASSES - 1
        device = self.head.cls_logits.weight.device
        num_points, num_foreground = 0, 0
        for target, image_size in zip(targets, image_sizes):
            sizes = feature_grid_sizes(padded_image_size(image_size, self.size_divisibility), self.strides)
            locations = locations_for_sizes(sizes, self.strides, device=device)
            labels, _ = self.loss_evaluator.prepare_targets(locations, [target.to(device)])
            num_points += labels.numel()
            num_foreground += int((labels > 0).sum())
        return torch.tensor([num_points * num_classes, num_foreground], dtype=torch.float64)

    def set_bias_from_counts(self, counts):
        return set_bias_to_prior(self.head.cls_logits, counts)

    def classification_layer(self):
        """The last classification conv (its gradient norm is a Sampling-Free diagnostic)."""
        return self.head.cls_logits


def build_fcos(cfg, in_channels):
    return FCOSModule(cfg, in_channels)
