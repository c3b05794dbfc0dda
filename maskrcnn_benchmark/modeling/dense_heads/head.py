"""DenseHead: the base of every dense head, on the Sampling-Free head protocol.

A dense head predicts, for every position of every pyramid level (an anchor, or a point), class
logits, a box regression and optionally a quality (centre-ness, IoU). ``SamplingFreeHead`` brings
the guided loss scaler, the sample strategies, ``scaled_losses`` and the optimal bias; this class
adds what every dense head does the same way:

- ``forward(images, features, targets=None)``: ``(None, losses)`` in training, ``(detections, {})``
  in evaluation (the meta-architecture's contract);
- the positions of the feature maps (``position_generator``: an AnchorGenerator or a PointGenerator),
  and for an image size without a forward (``positions_for_image_size``);
- ``labels_for_counting`` (the optimal bias) from the head's own assignment.

Its losses a head computes with ``classification.dense_classification_loss`` (the hard and soft
strategies it is given) and the kit's box losses.

A subclass gives ``head`` (the convs: ``head(features)`` returns per-level ``(box_cls,
box_regression[, quality])``) to ``__init__`` and supplies ``self.box_selector_test`` (a DensePostProcessor),
``assign(positions_per_level, target)`` (labels first), ``losses(predictions, positions, targets)``
and ``classification_layer()``.
"""
from maskrcnn_benchmark.modeling.rpn.anchor_generator import positions_for_image_size
from maskrcnn_benchmark.modeling.sample_strategy import SIGMOID
from maskrcnn_benchmark.modeling.sampling_free import SamplingFreeHead, stage_settings
from maskrcnn_benchmark.structures.box_convention import box_convention_from_config

from .postprocess import DensePostProcessor


def conv_head_config(group, in_channels):
    """What every dense head's conv module reads the same way from its config group."""
    return {
        "in_channels": in_channels,
        "num_classes": group.NUM_CLASSES - 1,  # NUM_CLASSES counts the background
        "num_convs": group.NUM_CONVS,
        "prior_prob": group.PRIOR_PROB,
    }


def dense_head_config(cfg, group):
    """What every dense head's ``from_config`` reads the same way, for its config group ``group``
    (e.g. ``cfg.MODEL.FCOS``): the ONE_STAGE Sampling-Free settings (with the group's focal loss
    gamma / alpha), the post-processing settings (with the MODEL.BOX_CONVENTION) and the batching's
    SIZE_DIVISIBILITY."""
    return {
        "settings": stage_settings(cfg, "ONE_STAGE", focal_gamma=group.LOSS_GAMMA, focal_alpha=group.LOSS_ALPHA),
        "postprocess": dict(DensePostProcessor.settings_from(group, cfg.TEST), convention=box_convention_from_config(cfg)),
        "size_divisibility": cfg.DATALOADER.SIZE_DIVISIBILITY,
    }


class DenseHead(SamplingFreeHead):
    """``name``: the Sampling-Free name ("retina", "fcos", ...); ``settings``: the ONE_STAGE
    StageSettings; ``head``: the convs (with ``num_classes``, the foreground classes = sigmoid
    columns); ``position_generator``: where the head's samples sit; ``size_divisibility``: the
    batching's padding (DATALOADER.SIZE_DIVISIBILITY), so counting sees the maps the network sees."""

    # The MODEL.<group> the head's from_config reads (its NUM_CLASSES is the classifier size)
    config_group = None
    # maskrcnn-benchmark's files store the cell anchors under rpn.anchor_generator (checked against
    # ours when loading, utils/model_serialization.py)
    legacy_child_names = {"anchor_generator": "position_generator"}

    def __init__(self, name, settings, head, position_generator, size_divisibility):
        super().__init__(name, settings, SIGMOID, head.num_classes)
        self.head = head
        self.position_generator = position_generator
        self.size_divisibility = size_divisibility

    # ---- what a subclass supplies -------------------------------------------------------------
    def assign(self, positions_per_level, target):
        """This head's assignment for one image: a tuple whose first entry is the labels (int64,
        -1 ignored, 0 background, > 0 class) of the positions of all levels."""
        raise NotImplementedError(f"{type(self).__name__} must implement assign()")

    def losses(self, predictions, positions_per_level, targets):
        raise NotImplementedError(f"{type(self).__name__} must implement losses()")

    # ---- the shared plumbing --------------------------------------------------------------------
    def _device(self):
        return self.classification_layer().weight.device

    def positions_for_features(self, features):
        """Per level, the positions of the maps ``features`` (``N x C x H x W`` each)."""
        return self.position_generator.grid_positions([tuple(f.shape[-2:]) for f in features], features[0].device)

    def positions_for_image_size(self, image_size):
        """Per level, the positions for an image of ``(h, w)`` as the network sees it after batching."""
        return positions_for_image_size(self.position_generator, image_size, self.size_divisibility, self._device())

    def forward(self, images, features, targets=None):
        """``images``: the ImageList; ``features``: the pyramid maps. Training: ``(None, losses)``;
        evaluation: ``(one BoxList of detections per image, {})``."""
        predictions = self.head(features)
        positions = self.positions_for_features(features)
        if self.training:
            if targets is None:
                raise ValueError(f"{type(self).__name__}: targets are required in training mode")
            return None, self.losses(predictions, positions, targets)
        box_cls, box_regression, *quality = predictions
        detections = self.box_selector_test(
            positions, box_cls, box_regression, quality[0] if quality else None, images.image_sizes
        )
        return detections, {}

    def labels_for_counting(self, target, image_size):
        positions = self.positions_for_image_size(image_size)
        return self.assign(positions, target.to(self._device()))[0]

    def counting_levels(self, image_size):
        positions = self.positions_for_image_size(image_size)
        return [(f"stride {stride}", len(level)) for stride, level in zip(self.position_generator.strides, positions)]
