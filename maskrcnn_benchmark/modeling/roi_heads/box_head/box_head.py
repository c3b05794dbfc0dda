"""The box head of Faster/Mask R-CNN: per-RoI features, class scores, box refinements."""
import functools

import torch

from maskrcnn_benchmark.config.configurable import configurable
from maskrcnn_benchmark.modeling.box_coder import BoxCoder
from maskrcnn_benchmark.modeling.rpn.inference import make_initial_proposals
from maskrcnn_benchmark.modeling.sample_strategy import SOFTMAX
from maskrcnn_benchmark.modeling.sampling_free import SamplingFreeHead, stage_settings
from maskrcnn_benchmark.structures.box_convention import box_convention_from_config
from maskrcnn_benchmark.utils.comm import get_world_size

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
    ``box_coder``: the proposals' assignment and regression targets. ``initial_proposals``: the
    proposals an untrained RPN makes (``rpn.inference.InitialProposals``), on which the samples
    are counted for the optimal bias (see ``labels_for_counting``).
    """

    @configurable
    def __init__(self, settings, feature_extractor, predictor, post_processor, proposal_matcher, box_coder,
                 num_classes, cls_agnostic_bbox_reg=False, initial_proposals=None):
        super(ROIBoxHead, self).__init__("roi", settings, SOFTMAX, num_classes=num_classes - 1)
        self.feature_extractor = feature_extractor
        self.predictor = predictor
        self.post_processor = post_processor
        self.loss_evaluator = FastRCNNLossComputation(
            proposal_matcher, self.hard_strategy, box_coder, cls_agnostic_bbox_reg, soft_strategy=self.soft_strategy
        )
        self.initial_proposals = initial_proposals

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
            "initial_proposals": make_initial_proposals(cfg, cfg.SOLVER.IMS_PER_BATCH // get_world_size()),
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
        """Class labels of the proposals this head trains on at initialisation, matched at the RoI
        thresholds: those an untrained RPN selects (constant scores, no regression: a random subset
        of its anchors through its own NMS and top-N) plus the ground truth, as training adds it."""
        if self.initial_proposals is None:
            raise ValueError("ROIBoxHead: counting samples for the optimal bias needs initial_proposals")
        device = self.classification_layer().weight.device
        target = target.convert("xyxy").to(device)
        proposals = self.initial_proposals(target, image_size)
        (labels,), _ = self.loss_evaluator.prepare_targets([proposals], [target])
        return labels

    def classification_layer(self):
        """The class-score layer."""
        return self.predictor.cls_score


def build_roi_box_head(cfg, in_channels):
    return ROIBoxHead(cfg, in_channels)
