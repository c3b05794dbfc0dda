"""RetinaNet head and module (built by build_rpn when MODEL.RETINANET_ON).

The head predicts, on every FPN level P3-P7, C class logits and 4 box deltas for each of the
A = len(ASPECT_RATIOS) * SCALES_PER_OCTAVE anchors of a location, through two 4-conv towers.
"""
import torch
from torch import nn

from maskrcnn_benchmark.modeling.box_coder import BoxCoder
from maskrcnn_benchmark.modeling.rpn.anchor_generator import (
    feature_grid_sizes,
    make_anchor_generator_retinanet,
    padded_image_size,
)
from maskrcnn_benchmark.modeling.rpn.retinanet.inference import make_retinanet_postprocessor
from maskrcnn_benchmark.modeling.rpn.retinanet.loss import make_retinanet_loss_evaluator
from maskrcnn_benchmark.modeling.rpn.retinanet.sampling_free_hooks import (
    make_one_stage_loss_scaler,
    set_bias_to_prior,
)
from maskrcnn_benchmark.modeling.sampling_free import prior_to_bias
from maskrcnn_benchmark.structures.bounding_box import BoxList


def make_tower(in_channels, num_convs):
    layers = []
    for _ in range(num_convs):
        layers += [nn.Conv2d(in_channels, in_channels, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*layers)


class RetinaNetHead(nn.Module):
    def __init__(self, cfg, in_channels):
        super().__init__()
        retina_cfg = cfg.MODEL.RETINANET
        num_classes = retina_cfg.NUM_CLASSES - 1  # NUM_CLASSES counts the background
        num_anchors = len(retina_cfg.ASPECT_RATIOS) * retina_cfg.SCALES_PER_OCTAVE

        self.cls_tower = make_tower(in_channels, retina_cfg.NUM_CONVS)
        self.bbox_tower = make_tower(in_channels, retina_cfg.NUM_CONVS)
        self.cls_logits = nn.Conv2d(in_channels, num_anchors * num_classes, 3, padding=1)
        self.bbox_pred = nn.Conv2d(in_channels, num_anchors * 4, 3, padding=1)

        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, std=0.01)
                nn.init.constant_(module.bias, 0)
        # Every anchor starts at p = PRIOR_PROB; "optimal" bias init overwrites this later.
        nn.init.constant_(self.cls_logits.bias, float(prior_to_bias(retina_cfg.PRIOR_PROB)))

    def forward(self, x):
        logits = [self.cls_logits(self.cls_tower(feature)) for feature in x]
        bbox_reg = [self.bbox_pred(self.bbox_tower(feature)) for feature in x]
        return logits, bbox_reg


class RetinaNetModule(nn.Module):
    """Head, anchors, losses and post-processing; the detector's only stage after the backbone."""

    sampling_free_name = "retina"
    sampling_free_stage = "ONE_STAGE"

    def __init__(self, cfg, in_channels):
        super().__init__()
        self.cfg = cfg.clone()
        self.anchor_generator = make_anchor_generator_retinanet(cfg)
        self.head = RetinaNetHead(cfg, in_channels)
        self.box_coder = BoxCoder(weights=(10.0, 10.0, 5.0, 5.0))
        self.box_selector_test = make_retinanet_postprocessor(cfg, self.box_coder, is_train=False)
        self.loss_evaluator = make_retinanet_loss_evaluator(cfg, self.box_coder)
        self.loss_scaler = make_one_stage_loss_scaler(cfg, self.sampling_free_name)
        self.anchor_strides = tuple(cfg.MODEL.RETINANET.ANCHOR_STRIDES)
        self.size_divisibility = cfg.DATALOADER.SIZE_DIVISIBILITY

    def forward(self, images, features, targets=None):
        box_cls, box_regression = self.head(features)
        anchors = self.anchor_generator(images, features)
        if self.training:
            return anchors, self._losses(anchors, box_cls, box_regression, targets)
        return self.box_selector_test(anchors, box_cls, box_regression), {}

    def _losses(self, anchors, box_cls, box_regression, targets):
        loss_cls, loss_reg = self.loss_evaluator(anchors, box_cls, box_regression, targets)
        # The box loss guides the classification loss (identity with the default GUIDED "none").
        loss_cls, extras = self.loss_scaler(loss_cls, loss_reg)
        losses = {"loss_retina_cls": loss_cls, "loss_retina_reg": loss_reg}
        losses.update(extras)
        return losses

    def anchors_for_image_size(self, image_size):
        """All anchors (one BoxList, levels concatenated) of an image of (height, width)."""
        padded = padded_image_size(image_size, self.size_divisibility)
        grid_sizes = feature_grid_sizes(padded, self.anchor_strides)
        per_level = self.anchor_generator.grid_anchors(grid_sizes)
        height, width = image_size
        return BoxList(torch.cat(list(per_level), dim=0), (width, height), mode="xyxy")

    @torch.no_grad()
    def count_samples(self, targets, image_sizes):
        """[N, N^f] for the optimal bias: N = valid anchors x classes, N^f = positive anchors.

        ``image_sizes`` are (height, width) of the resized images, as in ImageList.image_sizes.
        Counted with this head's anchors and matching, without a network forward.
        """
        num_classes = self.cfg.MODEL.RETINANET.NUM_CLASSES - 1
        num_valid, num_foreground = 0, 0
        for target, image_size in zip(targets, image_sizes):
            anchors = self.anchors_for_image_size(image_size)
            labels = self.loss_evaluator.prepare_targets([anchors], [target.to(anchors.bbox.device)])[0][0]
            num_valid += int((labels >= 0).sum())
            num_foreground += int((labels > 0).sum())
        return torch.tensor([num_valid * num_classes, num_foreground], dtype=torch.float64)

    def set_bias_from_counts(self, counts):
        return set_bias_to_prior(self.head.cls_logits, counts)

    def classification_layer(self):
        """The last classification conv (its gradient norm is a Sampling-Free diagnostic)."""
        return self.head.cls_logits


def build_retinanet(cfg, in_channels):
    return RetinaNetModule(cfg, in_channels)
