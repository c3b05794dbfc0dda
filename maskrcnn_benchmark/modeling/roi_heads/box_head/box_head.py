"""The box head of Faster/Mask R-CNN: per-RoI features, class scores, box refinements."""
import functools

import torch

from maskrcnn_benchmark.config.configurable import configurable
from maskrcnn_benchmark.modeling.box_coder import BoxCoder
from maskrcnn_benchmark.modeling.rpn.anchor_generator import anchors_for_image_sizes, make_anchor_generator
from maskrcnn_benchmark.modeling.sample_strategy import SOFTMAX
from maskrcnn_benchmark.modeling.sampling_free import SamplingFreeHead, stage_settings
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.boxlist_ops import cat_boxlist
from maskrcnn_benchmark.structures.box_convention import box_convention_from_config

from .inference import make_roi_box_post_processor
from .loss import FastRCNNLossComputation, make_roi_matcher
from .roi_box_feature_extractors import make_roi_box_feature_extractor
from .roi_box_predictors import make_roi_box_predictor


class ROIBoxHead(SamplingFreeHead):
    """Training returns ``loss_classifier`` (through the stage's guided loss scaler, guided by
    the box regression loss; identity by default) and ``loss_box_reg``; inference returns the
    detections. Which proposals are trained is the stage's hard sample strategy (it may score
    every candidate through the head first, without gradient), the classification loss its soft
    one.

    ``feature_extractor``: (features, proposals) -> per-RoI features; ``predictor``: those ->
    (class logits, box regressions); ``post_processor``: the detections; ``proposal_matcher`` /
    ``box_coder``: the proposals' assignment and regression targets. ``proxy_anchor_generator``
    and ``size_divisibility``: the anchors that stand in for proposals when the samples are
    counted for the optimal bias (see ``labels_for_counting``).
    """

    @configurable
    def __init__(self, settings, feature_extractor, predictor, post_processor, proposal_matcher, box_coder,
                 num_classes, cls_agnostic_bbox_reg=False, proxy_anchor_generator=None, size_divisibility=0):
        super(ROIBoxHead, self).__init__("roi", settings, SOFTMAX, num_classes=num_classes - 1)
        self.feature_extractor = feature_extractor
        self.predictor = predictor
        self.post_processor = post_processor
        self.loss_evaluator = FastRCNNLossComputation(
            proposal_matcher, self.hard_strategy, box_coder, cls_agnostic_bbox_reg, soft_strategy=self.soft_strategy
        )
        self.proxy_anchor_generator = proxy_anchor_generator
        self.size_divisibility = size_divisibility

    @classmethod
    def from_config(cls, cfg, in_channels):
        feature_extractor = make_roi_box_feature_extractor(cfg, in_channels)
        return {
            "settings": stage_settings(cfg, "ROI"),
            "feature_extractor": feature_extractor,
            "predictor": make_roi_box_predictor(cfg, feature_extractor.out_channels),
            "post_processor": make_roi_box_post_processor(cfg),
            "proposal_matcher": make_roi_matcher(cfg),
            "box_coder": BoxCoder(weights=cfg.MODEL.ROI_HEADS.BBOX_REG_WEIGHTS,
                                  convention=box_convention_from_config(cfg)),
            "num_classes": cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES,
            "cls_agnostic_bbox_reg": cfg.MODEL.CLS_AGNOSTIC_BBOX_REG,
            "proxy_anchor_generator": make_anchor_generator(cfg),
            "size_divisibility": cfg.DATALOADER.SIZE_DIVISIBILITY,
        }

    def forward(self, features, proposals, targets=None):
        """Returns (per-RoI features, proposals trained on / detections, losses)."""
        if self.training:
            if targets is None:
                raise ValueError("ROIBoxHead: targets must be given in training mode")
            with torch.no_grad():
                # A strategy that ranks candidates by score or loss gets this head's forward on them.
                predict = functools.partial(self.predict, features)
                proposals = self.loss_evaluator.subsample(proposals, targets, predict=predict)

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
        if self.proxy_anchor_generator is None:
            raise ValueError("ROIBoxHead: counting samples for the optimal bias needs a proxy_anchor_generator")
        (anchors,) = anchors_for_image_sizes(self.proxy_anchor_generator, [image_size], self.size_divisibility)
        visible = anchors[anchors.get_field("visibility").bool()]
        target = target.convert("xyxy").to(visible.bbox.device)
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
