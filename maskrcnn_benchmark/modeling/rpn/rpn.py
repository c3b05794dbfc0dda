"""Region Proposal Network: objectness + box regression on anchors, then proposal selection."""
import torch
import torch.nn.functional as F
from torch import nn

from maskrcnn_benchmark.config.configurable import configurable
from maskrcnn_benchmark.modeling import registry
from maskrcnn_benchmark.modeling.architecture import is_dense_detector
from maskrcnn_benchmark.modeling.box_coder import BoxCoder
from maskrcnn_benchmark.modeling.dense_heads.build import build_dense_head
from maskrcnn_benchmark.modeling.rpn.anchor_generator import (
    anchors_for_image_sizes,
    image_grid_sizes,
    make_anchor_generator,
)
from maskrcnn_benchmark.modeling.rpn.inference import make_rpn_postprocessor
from maskrcnn_benchmark.modeling.rpn.loss import RPNLossComputation, generate_rpn_labels, make_rpn_matcher
from maskrcnn_benchmark.modeling.sample_strategy import SIGMOID
from maskrcnn_benchmark.modeling.sampling_free import SamplingFreeHead, stage_settings
from maskrcnn_benchmark.modeling.utils import registered
from maskrcnn_benchmark.structures.box_convention import box_convention_from_config


def _init_normal(*layers):
    for layer in layers:
        nn.init.normal_(layer.weight, std=0.01)
        nn.init.constant_(layer.bias, 0)


class _AnchorPredictionHead(nn.Module):
    """Base of the heads that predict, per anchor of a location, an objectness logit and 4 box
    deltas (``cls_logits``, ``bbox_pred``); built from ``in_channels`` and ``num_anchors`` alone."""

    @classmethod
    def from_config(cls, cfg, in_channels, num_anchors):
        return {"in_channels": in_channels, "num_anchors": num_anchors}

    def _add_predictions(self, in_channels, num_anchors):
        self.cls_logits = nn.Conv2d(in_channels, num_anchors, kernel_size=1, stride=1)
        self.bbox_pred = nn.Conv2d(in_channels, num_anchors * 4, kernel_size=1, stride=1)


class RPNHeadConvRegressor(_AnchorPredictionHead):
    """Objectness and regression as 1x1 convs straight on the input features."""

    @configurable
    def __init__(self, in_channels, num_anchors):
        super(RPNHeadConvRegressor, self).__init__()
        self._add_predictions(in_channels, num_anchors)
        _init_normal(self.cls_logits, self.bbox_pred)

    def forward(self, x):
        return [self.cls_logits(y) for y in x], [self.bbox_pred(y) for y in x]


class RPNHeadFeatureSingleConv(nn.Module):
    """A shared 3x3 conv + ReLU that produces the RPN's features (no predictions)."""

    @configurable
    def __init__(self, in_channels):
        super(RPNHeadFeatureSingleConv, self).__init__()
        self.conv = nn.Conv2d(in_channels, in_channels, kernel_size=3, stride=1, padding=1)
        _init_normal(self.conv)
        self.out_channels = in_channels

    @classmethod
    def from_config(cls, cfg, in_channels):
        return {"in_channels": in_channels}

    def forward(self, x):
        return [F.relu(self.conv(y)) for y in x]


@registry.RPN_HEADS.register("SingleConvRPNHead")
class RPNHead(_AnchorPredictionHead):
    """3x3 conv + ReLU shared across levels, then 1x1 objectness (A) and regression (4A) convs."""

    @configurable
    def __init__(self, in_channels, num_anchors):
        super(RPNHead, self).__init__()
        self.conv = nn.Conv2d(in_channels, in_channels, kernel_size=3, stride=1, padding=1)
        self._add_predictions(in_channels, num_anchors)
        _init_normal(self.conv, self.cls_logits, self.bbox_pred)

    def forward(self, x):
        logits, bbox_reg = [], []
        for feature in x:
            t = F.relu(self.conv(feature))
            logits.append(self.cls_logits(t))
            bbox_reg.append(self.bbox_pred(t))
        return logits, bbox_reg


class RPNModule(SamplingFreeHead):
    """The RPN of Faster/Mask R-CNN (one level, or one per FPN level).

    Training returns proposals for the RoI heads plus ``loss_objectness`` and
    ``loss_rpn_box_reg``; the objectness loss passes through the stage's guided loss scaler
    (Sampling-Free, guided by the box loss; identity with the default config). Which anchors are
    trained is the stage's hard sample strategy, the objectness loss its soft one.

    ``head``: features -> (per-level objectness ``N x A x H x W``, regressions ``N x 4A x H x W``);
    ``proposal_matcher`` / ``box_coder``: the anchors' assignment and regression targets;
    ``box_selector_train`` / ``box_selector_test``: RPNPostProcessors; ``rpn_only``: the proposals
    are the detector's output (none are selected in training, they are sorted in inference);
    ``size_divisibility``: the batch padding, for the anchors counted at initialisation.
    """

    @configurable
    def __init__(self, settings, anchor_generator, head, proposal_matcher, box_coder, box_selector_train,
                 box_selector_test, rpn_only=False, size_divisibility=0):
        super(RPNModule, self).__init__("rpn", settings, SIGMOID, num_classes=1)
        self.anchor_generator = anchor_generator
        self.head = head
        self.box_selector_train = box_selector_train
        self.box_selector_test = box_selector_test
        self.loss_evaluator = RPNLossComputation(
            proposal_matcher, self.hard_strategy, box_coder, generate_rpn_labels, soft_strategy=self.soft_strategy
        )
        self.rpn_only = rpn_only
        self.size_divisibility = size_divisibility

    @classmethod
    def from_config(cls, cfg, in_channels):
        anchor_generator = make_anchor_generator(cfg)
        head_class = registered(registry.RPN_HEADS, cfg.MODEL.RPN.RPN_HEAD, "MODEL.RPN.RPN_HEAD")
        box_coder = BoxCoder(weights=(1.0, 1.0, 1.0, 1.0), convention=box_convention_from_config(cfg))
        return {
            "settings": stage_settings(cfg, "RPN"),
            "anchor_generator": anchor_generator,
            "head": head_class(cfg, in_channels, anchor_generator.num_anchors_per_location()[0]),
            "proposal_matcher": make_rpn_matcher(cfg),
            "box_coder": box_coder,
            "box_selector_train": make_rpn_postprocessor(cfg, box_coder, is_train=True),
            "box_selector_test": make_rpn_postprocessor(cfg, box_coder, is_train=False),
            "rpn_only": cfg.MODEL.RPN_ONLY,
            "size_divisibility": cfg.DATALOADER.SIZE_DIVISIBILITY,
        }

    def forward(self, images, features, targets=None):
        """``images``: ImageList; ``features``: list of feature maps; ``targets``: per image
        BoxLists (training). Returns (proposals per image, losses dict)."""
        objectness, rpn_box_regression = self.head(features)
        anchors = self.anchor_generator(images, features)
        if self.training:
            if targets is None:
                raise ValueError("RPNModule: targets must be given in training mode")
            return self._forward_train(anchors, objectness, rpn_box_regression, targets)
        return self._forward_test(anchors, objectness, rpn_box_regression)

    def _forward_train(self, anchors, objectness, rpn_box_regression, targets):
        if self.rpn_only:
            # Nothing downstream consumes proposals: skip their (costly) selection.
            boxes = anchors
        else:
            # Proposals are inputs to the RoI heads, not a path for gradients.
            with torch.no_grad():
                boxes = self.box_selector_train(
                    anchors,
                    [o.detach() for o in objectness],
                    [r.detach() for r in rpn_box_regression],
                    targets,
                )
        loss_objectness, loss_rpn_box_reg = self.loss_evaluator(
            anchors, objectness, rpn_box_regression, targets
        )
        return boxes, self.scaled_losses("loss_objectness", loss_objectness, "loss_rpn_box_reg", loss_rpn_box_reg)

    def _forward_test(self, anchors, objectness, rpn_box_regression):
        boxes = self.box_selector_test(anchors, objectness, rpn_box_regression)
        if self.rpn_only:
            # Proposals are the final output: order them by decreasing objectness.
            boxes = [box[box.get_field("objectness").sort(descending=True)[1]] for box in boxes]
        return boxes, {}

    # ---- Sampling-Free protocol -------------------------------------------------------------
    def labels_for_counting(self, target, image_size):
        """Objectness labels of this head's anchors: -1 between the thresholds or straddling."""
        (anchors,) = anchors_for_image_sizes(self.anchor_generator, [image_size], self.size_divisibility)
        (labels,), _ = self.loss_evaluator.prepare_targets([anchors], [target.to(anchors.bbox.device)])
        return labels.to(torch.int64)

    def counting_levels(self, image_size):
        grid = image_grid_sizes(image_size, self.size_divisibility, self.anchor_generator.strides)
        per_location = self.anchor_generator.num_anchors_per_location()
        return [(f"stride {stride}", height * width * num) for stride, (height, width), num
                in zip(self.anchor_generator.strides, grid, per_location)]

    def classification_layer(self):
        """The objectness conv."""
        return self.head.cls_logits


def build_rpn(cfg, in_channels):
    """The first stage of ``cfg``: the RPN, or (maskrcnn-benchmark's ``MODEL.RETINANET_ON`` and
    the other dense switches) the dense head, which then is the whole detector after the backbone."""
    if is_dense_detector(cfg):
        return build_dense_head(cfg, in_channels)
    return RPNModule(cfg, in_channels)
