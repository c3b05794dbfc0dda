"""RetinaNet training targets and losses.

Each anchor is matched to the ground truth by IoU (FG_IOU_THRESHOLD / BG_IOU_THRESHOLD, with the
low-quality matches that give every box its best anchor). Labels: the matched class (1..C),
0 for background, -1 for ignored anchors between the two thresholds. Anchors crossing the image
border are kept, as in the public RetinaNet.

Both losses are divided by the number of positive anchors (at least 1, so that a batch without
boxes gives a finite loss): the classification loss (focal or CE) summed over all valid anchors and
classes, and the smooth-L1 box loss summed over positives and further divided by BBOX_REG_WEIGHT.
"""
import torch

from maskrcnn_benchmark.layers import smooth_l1_loss
from maskrcnn_benchmark.modeling.matcher import Matcher
from maskrcnn_benchmark.modeling.rpn.loss import RPNLossComputation
from maskrcnn_benchmark.modeling.rpn.retinanet.classification_loss import (
    make_one_stage_classification_loss,
)
from maskrcnn_benchmark.modeling.rpn.utils import concat_box_prediction_layers
from maskrcnn_benchmark.structures.boxlist_ops import cat_boxlist


class RetinaNetLossComputation(RPNLossComputation):
    def __init__(self, proposal_matcher, box_coder, generate_labels_func, sigmoid_focal_loss,
                 bbox_reg_beta=0.11, regress_norm=1.0):
        # Every anchor is trained (focal loss or CE), so there is no fg / bg sampler.
        super().__init__(proposal_matcher, None, box_coder, generate_labels_func)
        self.copied_fields = ["labels"]
        # Only anchors between the IoU thresholds are ignored; border-crossing anchors are trained.
        self.discard_cases = ["between_thresholds"]
        # Any loss with the SigmoidFocalLoss contract (labels 1..C / 0 / -1, summed): focal or CE.
        self.box_cls_loss_func = sigmoid_focal_loss
        self.bbox_reg_beta = bbox_reg_beta
        self.regress_norm = regress_norm

    def __call__(self, anchors, box_cls, box_regression, targets):
        """anchors: per image, a list of per-level BoxLists; box_cls / box_regression: per level."""
        anchors = [cat_boxlist(anchors_per_image) for anchors_per_image in anchors]
        labels, regression_targets = self.prepare_targets(anchors, targets)
        box_cls, box_regression = concat_box_prediction_layers(box_cls, box_regression)
        labels = torch.cat(labels, dim=0)
        regression_targets = torch.cat(regression_targets, dim=0)

        positive = labels > 0
        num_positive = int(positive.sum())
        normaliser = max(num_positive, 1)
        cls_loss = self.box_cls_loss_func(box_cls, labels.int()) / normaliser
        reg_loss = smooth_l1_loss(
            box_regression[positive], regression_targets[positive],
            beta=self.bbox_reg_beta, size_average=False,
        ) / (normaliser * self.regress_norm)
        return cls_loss, reg_loss


def generate_retinanet_labels(matched_targets):
    """Class of the matched box, 0 for background; the caller marks ignored anchors -1."""
    labels = matched_targets.get_field("labels").to(torch.int64).clone()
    labels[matched_targets.get_field("matched_idxs") < 0] = 0
    return labels


def make_retinanet_loss_evaluator(cfg, box_coder):
    retina_cfg = cfg.MODEL.RETINANET
    matcher = Matcher(
        retina_cfg.FG_IOU_THRESHOLD,
        retina_cfg.BG_IOU_THRESHOLD,
        allow_low_quality_matches=True,
    )
    cls_loss = make_one_stage_classification_loss(
        cfg.MODEL.SAMPLING_FREE.ONE_STAGE.CLS_LOSS, retina_cfg.LOSS_GAMMA, retina_cfg.LOSS_ALPHA
    )
    return RetinaNetLossComputation(
        matcher,
        box_coder,
        generate_retinanet_labels,
        cls_loss,
        bbox_reg_beta=retina_cfg.BBOX_REG_BETA,
        regress_norm=retina_cfg.BBOX_REG_WEIGHT,
    )
