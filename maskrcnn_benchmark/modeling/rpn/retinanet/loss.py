"""RetinaNet training targets and losses.

Each anchor is matched to the ground truth by IoU (FG_IOU_THRESHOLD / BG_IOU_THRESHOLD, with the
low-quality matches that give every box its best anchor). Labels: the matched class (1..C),
0 for background, -1 for ignored anchors between the two thresholds. Anchors crossing the image
border are kept, as in the public RetinaNet.

The classification loss (the soft strategy: focal or CE) is summed over the samples the hard
strategy trains ("all": every anchor not ignored) and divided by the number of positive anchors;
the smooth-L1 box loss is summed over positives and divided by the same number and by
BBOX_REG_WEIGHT. Divisors are at least 1 (a batch without boxes gives a finite loss) and averaged
over processes.
"""
import torch

from maskrcnn_benchmark.layers import smooth_l1_loss
from maskrcnn_benchmark.modeling.dense_heads.classification import dense_classification_loss
from maskrcnn_benchmark.modeling.dense_heads.layout import flatten_levels
from maskrcnn_benchmark.modeling.matcher import Matcher
from maskrcnn_benchmark.modeling.sample_strategy import SIGMOID, AllSamples, build_hard_strategy, build_soft_strategy
from maskrcnn_benchmark.modeling.sampling_free import stage_settings
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.boxlist_ops import boxlist_iou, cat_boxlist


def generate_retinanet_labels(matched_targets):
    """Class of the matched box, 0 for background; the caller marks ignored anchors -1."""
    labels = matched_targets.get_field("labels").to(torch.int64).clone()
    labels[matched_targets.get_field("matched_idxs") < 0] = 0
    return labels


class RetinaNetLossComputation(object):
    """``proposal_matcher``: the IoU Matcher (IoUs in the box convention of ``box_coder``);
    ``sigmoid_focal_loss``: the classification loss, any callable ``(logits, labels) -> summed
    loss`` with the labels contract above (the head passes its soft strategy); ``hard_strategy``:
    which anchors it trains (default "all")."""

    def __init__(self, proposal_matcher, box_coder, generate_labels_func, sigmoid_focal_loss,
                 bbox_reg_beta=0.11, regress_norm=1.0, hard_strategy=None):
        self.proposal_matcher = proposal_matcher
        self.box_coder = box_coder
        self.generate_labels_func = generate_labels_func
        self.box_cls_loss_func = sigmoid_focal_loss
        self.hard_strategy = hard_strategy or AllSamples()
        self.bbox_reg_beta = bbox_reg_beta
        self.regress_norm = regress_norm

    def assign(self, anchors, target):
        """One image: labels ``[A]`` (class, 0, or -1 between the thresholds), box regression
        targets ``[A, 4]`` and each anchor's best IoU ``[A]``, for anchors ``[A, 4]``."""
        if len(target) == 0:
            labels = torch.zeros(anchors.shape[0], dtype=torch.int64, device=anchors.device)
            # The anchors as stand-in boxes keep the (unused) regression targets finite.
            return labels, self.box_coder.encode(anchors, anchors), anchors.new_zeros(anchors.shape[0])
        ious = boxlist_iou(target, BoxList(anchors, target.size, mode="xyxy"), self.box_coder.convention)  # G x A
        matched_idxs = self.proposal_matcher(ious)
        matched = target.copy_with_fields(["labels"])[matched_idxs.clamp(min=0)]
        matched.add_field("matched_idxs", matched_idxs)
        labels = self.generate_labels_func(matched)
        labels[matched_idxs == Matcher.BETWEEN_THRESHOLDS] = -1
        return labels, self.box_coder.encode(matched.bbox, anchors), ious.max(dim=0).values

    def prepare_targets(self, anchors, targets):
        """maskrcnn-benchmark's form: per image a BoxList of anchors; returns per image the labels
        and the regression targets."""
        assigned = [self.assign(a.bbox, t) for a, t in zip(anchors, targets)]
        return [a[0] for a in assigned], [a[1] for a in assigned]

    def losses(self, anchors, box_cls, box_regression, targets):
        """``anchors``: ``[R, 4]``, all levels joined (the same for every image); ``box_cls`` /
        ``box_regression``: per level ``N x A*C x H x W`` / ``N x A*4 x H x W``. Returns
        ``(cls_loss, reg_loss)``."""
        labels, regression_targets, ious = (torch.stack(t) for t in zip(*(self.assign(anchors, t) for t in targets)))
        num_classes = box_cls[0].shape[1] // (box_regression[0].shape[1] // 4)
        cls_loss, normaliser = dense_classification_loss(
            self.hard_strategy, self.box_cls_loss_func, flatten_levels(box_cls, num_classes), labels, ious
        )
        positive = labels.reshape(-1) > 0
        reg_loss = smooth_l1_loss(
            flatten_levels(box_regression, 4).reshape(-1, 4)[positive],
            regression_targets.reshape(-1, 4)[positive],
            beta=self.bbox_reg_beta,
            size_average=False,
        ) / (normaliser * self.regress_norm)
        return cls_loss, reg_loss

    def __call__(self, anchors, box_cls, box_regression, targets):
        """maskrcnn-benchmark's form: ``anchors`` per image, a list of per-level BoxLists."""
        return self.losses(cat_boxlist(anchors[0]).bbox, box_cls, box_regression, targets)


def make_retinanet_loss_evaluator(cfg, box_coder):
    """From MODEL.RETINANET and the ONE_STAGE sample strategies (RetinaNetModule passes its own)."""
    retina_cfg = cfg.MODEL.RETINANET
    settings = stage_settings(cfg, "ONE_STAGE", focal_gamma=retina_cfg.LOSS_GAMMA, focal_alpha=retina_cfg.LOSS_ALPHA)
    matcher = Matcher(retina_cfg.FG_IOU_THRESHOLD, retina_cfg.BG_IOU_THRESHOLD, allow_low_quality_matches=True)
    return RetinaNetLossComputation(
        matcher,
        box_coder,
        generate_retinanet_labels,
        build_soft_strategy(settings, SIGMOID),
        bbox_reg_beta=retina_cfg.BBOX_REG_BETA,
        regress_norm=retina_cfg.BBOX_REG_WEIGHT,
        hard_strategy=build_hard_strategy(settings),
    )
