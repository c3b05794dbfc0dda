"""RPN training targets and losses: objectness (sigmoid BCE by default) and anchor box regression."""
import torch

from maskrcnn_benchmark.layers import smooth_l1_loss
from maskrcnn_benchmark.modeling.matcher import Matcher
from maskrcnn_benchmark.modeling.rpn.utils import concat_box_prediction_layers
from maskrcnn_benchmark.modeling.sample_strategy import (
    SIGMOID,
    Candidates,
    CrossEntropy,
    as_hard_strategy,
    build_hard_strategy,
    build_soft_strategy,
    normalised_classification_loss,
)
from maskrcnn_benchmark.modeling.sampling_free.settings import stage_settings
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.box_convention import DEFAULT_BOX_CONVENTION
from maskrcnn_benchmark.structures.boxlist_ops import boxlist_iou, cat_boxlist

# Objectness labels: 1 object, 0 background, -1 never trained.
IGNORE = -1


def matched_ground_truth(matcher, anchor, target, copied_fields=(), convention=DEFAULT_BOX_CONVENTION):
    """Match ``anchor`` boxes to ``target`` boxes by their IoU in ``convention``; returns the
    matched targets (one row per anchor, row 0's values where unmatched) with a "matched_idxs"
    field holding the matcher's output (ground-truth index, or -1 / -2) and a "matched_ious" field
    holding each anchor's highest IoU with any ground-truth box (0 without ground truth)."""
    device = anchor.bbox.device
    if len(target) == 0:
        matched_idxs = torch.full((len(anchor),), Matcher.BELOW_LOW_THRESHOLD, dtype=torch.int64, device=device)
        # The anchors themselves as stand-in targets keep the (unused) regression targets finite.
        placeholder = BoxList(anchor.bbox.clone(), anchor.size, mode="xyxy")
        for field in copied_fields:
            placeholder.add_field(field, torch.zeros(len(anchor), dtype=torch.int64, device=device))
        placeholder.add_field("matched_idxs", matched_idxs)
        placeholder.add_field("matched_ious", anchor.bbox.new_zeros(len(anchor)))
        return placeholder
    match_quality_matrix = boxlist_iou(target, anchor, convention)
    matched_idxs = matcher(match_quality_matrix)
    matched = target.copy_with_fields(list(copied_fields))[matched_idxs.clamp(min=0)]
    matched.add_field("matched_idxs", matched_idxs)
    matched.add_field("matched_ious", match_quality_matrix.max(dim=0).values)
    return matched


def assign_to_ground_truth(samples, targets, match, label, box_coder):
    """Per image: the labels ``label(matched, samples)``, the regression targets (``box_coder``'s
    encoding of each sample's matched box) and each sample's best IoU, where ``matched =
    match(samples, target)`` holds each sample's matched ground truth (see ``matched_ground_truth``)."""
    labels, regression_targets, ious = [], [], []
    for samples_per_image, target in zip(samples, targets):
        matched = match(samples_per_image, target)
        labels.append(label(matched, samples_per_image))
        regression_targets.append(box_coder.encode(matched.bbox, samples_per_image.bbox))
        ious.append(matched.get_field("matched_ious"))
    return labels, regression_targets, ious


def generate_rpn_labels(matched_targets):
    """Binary objectness from the matcher's output: any match is an object."""
    return (matched_targets.get_field("matched_idxs") >= 0).to(torch.float32)


class RPNLossComputation(object):
    """Objectness and box losses of the RPN.

    Which anchors train the objectness and by what both losses are divided is the hard sample
    strategy ``fg_bg_sampler`` (a ``HardStrategy``; maskrcnn-benchmark's
    ``BalancedPositiveNegativeSampler`` is accepted as the "biased" strategy): "biased" draws 256
    anchors per image and divides by that number, "all" (Sampling-Free) trains every valid anchor
    (not between the IoU thresholds, not straddling the border), divides the objectness loss by the
    number of positives (paper eq. 13) and keeps the baseline's box-loss divisor. The objectness
    loss itself is the soft strategy ``soft_strategy`` (sigmoid cross-entropy by default). IoUs
    are taken in the box convention of ``box_coder``.
    """

    def __init__(self, proposal_matcher, fg_bg_sampler, box_coder, generate_labels_func, soft_strategy=None):
        self.proposal_matcher = proposal_matcher
        self.fg_bg_sampler = as_hard_strategy(fg_bg_sampler)
        self.box_coder = box_coder
        self.generate_labels_func = generate_labels_func
        self.soft_strategy = soft_strategy if soft_strategy is not None else CrossEntropy(SIGMOID)
        self.copied_fields = []
        self.discard_cases = ["not_visibility", "between_thresholds"]

    def match_targets_to_anchors(self, anchor, target, copied_fields=()):
        return matched_ground_truth(self.proposal_matcher, anchor, target, copied_fields, self.box_coder.convention)

    def assign(self, anchors, targets):
        """Per image: objectness labels (1 / 0 / -1, as ``generate_labels_func`` gives them),
        regression targets and each anchor's highest IoU with the ground truth."""
        return assign_to_ground_truth(anchors, targets, self._match, self._objectness_labels, self.box_coder)

    def _match(self, anchors, target):
        return self.match_targets_to_anchors(anchors, target, self.copied_fields)

    def _objectness_labels(self, matched, anchors):
        labels = self.generate_labels_func(matched)
        labels[matched.get_field("matched_idxs") == Matcher.BETWEEN_THRESHOLDS] = IGNORE
        if "not_visibility" in self.discard_cases:
            labels[~anchors.get_field("visibility").bool()] = IGNORE
        return labels

    def prepare_targets(self, anchors, targets):
        """Per image: objectness labels (1 / 0 / -1) and regression targets, one row per anchor."""
        labels, regression_targets, _ = self.assign(anchors, targets)
        return labels, regression_targets

    def __call__(self, anchors, objectness, box_regression, targets):
        """``anchors``: per image, per level BoxLists; ``objectness``/``box_regression``: per level
        ``N x A x H x W`` / ``N x 4A x H x W``. Returns (objectness loss, box loss)."""
        anchors = [cat_boxlist(anchors_per_image) for anchors_per_image in anchors]
        labels, regression_targets, ious = self.assign(anchors, targets)
        labels = [labels_per_image.to(torch.int64) for labels_per_image in labels]
        objectness, box_regression = concat_box_prediction_layers(objectness, box_regression)
        selection = self.fg_bg_sampler.select(Candidates(labels=labels, ious=ious))

        trained = torch.cat(selection.masks, dim=0)
        labels = torch.cat(labels, dim=0)
        positive = trained & (labels > 0)
        weights = None if selection.weights is None else torch.cat(selection.weights)[trained]
        cls_loss = normalised_classification_loss(
            self.soft_strategy, objectness[trained], labels[trained], lambda: selection.cls_normalizer, weights=weights
        )
        box_loss = smooth_l1_loss(
            box_regression[positive],
            torch.cat(regression_targets, dim=0)[positive],
            beta=1.0 / 9,
            size_average=False,
        ) / selection.loc_normalizer
        return cls_loss, box_loss


def make_rpn_matcher(cfg):
    """The RPN's anchor assignment: IoU >= FG_IOU_THRESHOLD object, < BG_IOU_THRESHOLD background,
    and every ground-truth box keeps its best anchors."""
    return Matcher(cfg.MODEL.RPN.FG_IOU_THRESHOLD, cfg.MODEL.RPN.BG_IOU_THRESHOLD, allow_low_quality_matches=True)


def make_rpn_loss_evaluator(cfg, box_coder, hard_strategy=None, soft_strategy=None):
    """The RPN loss of ``cfg``; the sample strategies default to those of MODEL.SAMPLING_FREE.RPN."""
    settings = stage_settings(cfg, "RPN")
    return RPNLossComputation(
        make_rpn_matcher(cfg),
        hard_strategy if hard_strategy is not None else build_hard_strategy(settings),
        box_coder,
        generate_rpn_labels,
        soft_strategy=soft_strategy if soft_strategy is not None else build_soft_strategy(settings, SIGMOID),
    )
