"""The box head of Faster/Mask R-CNN: per-RoI features, class scores, box refinements."""
import functools

import torch

from maskrcnn_benchmark.modeling.rpn.anchor_generator import anchors_for_image_sizes, make_anchor_generator
from maskrcnn_benchmark.modeling.sample_strategy import SOFTMAX
from maskrcnn_benchmark.modeling.sampling_free import SamplingFreeHead, stage_settings
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.boxlist_ops import cat_boxlist

from .inference import make_roi_box_post_processor
from .loss import make_roi_box_loss_evaluator
from .roi_box_feature_extractors import make_roi_box_feature_extractor
from .roi_box_predictors import make_roi_box_predictor


class ROIBoxHead(SamplingFreeHead):
    """Training returns ``loss_classifier`` (through the stage's guided loss scaler, guided by
    the box regression loss; identity by default) and ``loss_box_reg``; inference returns the
    detections."""

    def __init__(self, cfg, in_channels):
        super(ROIBoxHead, self).__init__(
            "roi", stage_settings(cfg, "ROI"), SOFTMAX, num_classes=cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES - 1
        )
        self.cfg = cfg.clone()
        self.feature_extractor = make_roi_box_feature_extractor(cfg, in_channels)
        self.predictor = make_roi_box_predictor(cfg, self.feature_extractor.out_channels)
        self.post_processor = make_roi_box_post_processor(cfg)
        self.loss_evaluator = make_roi_box_loss_evaluator(
            cfg, hard_strategy=self.hard_strategy, soft_strategy=self.soft_strategy
        )

    def forward(self, features, proposals, targets=None):
        """Returns (per-RoI features, proposals trained on / detections, losses)."""
        if self.training:
            if targets is None:
                raise ValueError("ROIBoxHead: targets must be given in training mode")
            with torch.no_grad():
                proposals = self.loss_evaluator.subsample(proposals, targets, predict=functools.partial(self.predict, features))

        x = self.feature_extractor(features, proposals)
        class_logits, box_regression = self.predictor(x)

        if not self.training:
            return x, self.post_processor((class_logits, box_regression), proposals), {}

        loss_classifier, loss_box_reg = self.loss_evaluator([class_logits], [box_regression])
        return x, proposals, self.scaled_losses("loss_classifier", loss_classifier, "loss_box_reg", loss_box_reg)

    def predict(self, features, proposals):
        """Class logits and box regressions of ``proposals`` (per-image BoxLists)."""
        return self.predictor(self.feature_extractor(features, proposals))

    # ---- Sampling-Free protocol -------------------------------------------------------------
    def labels_for_counting(self, target, image_size):
        """Class labels of a stand-in for this head's proposals, matched at the RoI thresholds.

        Proposals only exist after a network forward, so the RPN's anchors (all visible ones)
        plus the ground-truth boxes stand in for them. The proxy has far more background than real
        proposals (which cluster on objects), so the measured background frequency is an upper
        bound of the one seen in training.
        """
        (anchors,) = anchors_for_image_sizes(
            make_anchor_generator(self.cfg), [image_size], self.cfg.DATALOADER.SIZE_DIVISIBILITY
        )
        visible = anchors[anchors.get_field("visibility").bool()]
        target = target.convert("xyxy").to("cpu")
        proxy = cat_boxlist(
            [
                BoxList(visible.bbox, visible.size, mode="xyxy"),
                BoxList(target.bbox.to(dtype=visible.bbox.dtype), visible.size, mode="xyxy"),
            ]
        )
        (labels,), _ = self.loss_evaluator.prepare_targets([proxy], [target])
        return labels

    def classification_layer(self):
        """The class-score layer."""
        return self.predictor.cls_score


def build_roi_box_head(cfg, in_channels):
    return ROIBoxHead(cfg, in_channels)
