"""ATSS module (built by build_rpn when MODEL.ATSS_ON): one square anchor per location on P3-P7,
adaptive training sample selection, centre-ness branch, GIoU box loss.

Sampling-Free: MODEL.SAMPLING_FREE.ONE_STAGE picks focal or CE classification, the guided loss
scaler (the GIoU loss guides the classification loss; centre-ness is left as it is) and the bias
initialisation.
"""
import torch
from torch import nn

from maskrcnn_benchmark.modeling.box_coder import BoxCoder
from maskrcnn_benchmark.modeling.rpn.anchor_generator import (
    feature_grid_sizes,
    make_anchor_generator_retinanet,
    padded_image_size,
)
from maskrcnn_benchmark.modeling.rpn.atss.head import ATSSHead
from maskrcnn_benchmark.modeling.rpn.atss.inference import make_atss_postprocessor
from maskrcnn_benchmark.modeling.rpn.atss.loss import make_atss_loss_evaluator
from maskrcnn_benchmark.modeling.rpn.retinanet.sampling_free_hooks import make_one_stage_loss_scaler
from maskrcnn_benchmark.modeling.sampling_free import prior_to_bias, sigmoid_prior_from_counts

BOX_CODER_WEIGHTS = (10.0, 10.0, 5.0, 5.0)


class DenseAnchorModule(nn.Module):
    """What ATSS and PAA share: head, anchors, counting for the optimal bias, the loss dict."""

    sampling_free_stage = "ONE_STAGE"
    quality_loss_key = None

    def __init__(self, cfg, in_channels, head_cfg, group_name):
        super().__init__()
        self.head_cfg = head_cfg
        self.head = ATSSHead(head_cfg, in_channels, group_name)
        self.anchor_generator = make_anchor_generator_retinanet(cfg, head_cfg)
        self.box_coder = BoxCoder(weights=BOX_CODER_WEIGHTS)
        self.loss_scaler = make_one_stage_loss_scaler(cfg, self.sampling_free_name)
        self.size_divisibility = cfg.DATALOADER.SIZE_DIVISIBILITY
        self.num_classes = head_cfg.NUM_CLASSES - 1

    def forward(self, images, features, targets=None):
        box_cls, box_regression, quality = self.head(features)
        anchors = self.anchor_generator(images, features)
        if self.training:
            if targets is None:
                raise ValueError(f"{type(self).__name__}: targets are required in training mode")
            return None, self._losses(box_cls, box_regression, quality, targets, anchors)
        return self.box_selector_test(anchors, box_cls, box_regression, quality), {}

    def _losses(self, box_cls, box_regression, quality, targets, anchors):
        loss_cls, loss_reg, loss_quality = self.loss_evaluator(box_cls, box_regression, quality, targets, anchors)
        # The box loss guides the classification loss (identity with the default GUIDED "none").
        loss_cls, extras = self.loss_scaler(loss_cls, loss_reg)
        losses = {"loss_cls": loss_cls, "loss_reg": loss_reg, self.quality_loss_key: loss_quality}
        losses.update(extras)
        return losses

    def anchors_per_level_for_image_size(self, image_size):
        """This head's anchors (list over levels) for a resized image of (height, width)."""
        padded = padded_image_size(image_size, self.size_divisibility)
        grid_sizes = feature_grid_sizes(padded, self.anchor_generator.strides)
        return self.anchor_generator.grid_anchors(grid_sizes)

    def count_foreground(self, anchors_per_level, target):
        raise NotImplementedError

    @torch.no_grad()
    def count_samples(self, targets, image_sizes):
        """[N, N^f] for the optimal bias: N = anchors x classes, N^f = positive anchors.

        ``image_sizes`` are (height, width) of the resized images, as in ImageList.image_sizes;
        counted with this head's anchors and assignment, without a network forward.
        """
        num_samples, num_foreground = 0, 0
        for target, image_size in zip(targets, image_sizes):
            anchors_per_level = self.anchors_per_level_for_image_size(image_size)
            target = target.to(anchors_per_level[0].device)
            num_samples += sum(level.shape[0] for level in anchors_per_level) * self.num_classes
            num_foreground += self.count_foreground(anchors_per_level, target)
        return torch.tensor([num_samples, num_foreground], dtype=torch.float64)

    def set_bias_from_counts(self, counts):
        """Set every class logit's bias to -log((1 - pi) / pi), pi = N^f / N (paper eq. 19)."""
        pi = sigmoid_prior_from_counts(torch.as_tensor(counts, dtype=torch.float64).flatten())
        bias = prior_to_bias(pi)
        with torch.no_grad():
            self.head.cls_logits.bias.fill_(bias)
        return {"pi": pi, "bias": bias}

    def classification_layer(self):
        """The last classification conv (its gradient norm is a Sampling-Free diagnostic)."""
        return self.head.cls_logits


class ATSSModule(DenseAnchorModule):
    sampling_free_name = "atss"
    quality_loss_key = "loss_centerness"

    def __init__(self, cfg, in_channels):
        super().__init__(cfg, in_channels, cfg.MODEL.ATSS, "MODEL.ATSS")
        self.loss_evaluator = make_atss_loss_evaluator(cfg, self.box_coder)
        self.box_selector_test = make_atss_postprocessor(cfg, self.box_coder)

    def count_foreground(self, anchors_per_level, target):
        labels, _ = self.loss_evaluator.assign(anchors_per_level, target)
        return int((labels > 0).sum())


def build_atss(cfg, in_channels):
    return ATSSModule(cfg, in_channels)
