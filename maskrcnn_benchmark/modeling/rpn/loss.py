"""RPN training targets and losses: objectness (sigmoid BCE) and anchor box regression."""
import torch
from torch.nn import functional as F

from maskrcnn_benchmark.layers import smooth_l1_loss
from maskrcnn_benchmark.modeling.balanced_positive_negative_sampler import (
    BalancedPositiveNegativeSampler,
)
from maskrcnn_benchmark.modeling.matcher import Matcher
from maskrcnn_benchmark.modeling.rpn.utils import concat_box_prediction_layers
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.boxlist_ops import boxlist_iou, cat_boxlist

# Objectness labels: 1 object, 0 background, -1 never trained.
IGNORE = -1


def matched_ground_truth(matcher, anchor, target, copied_fields=()):
    """Match ``anchor`` boxes to ``target`` boxes; returns the matched targets (one row per
    anchor, row 0's values where unmatched) with a "matched_idxs" field holding the matcher's
    output (ground-truth index, or -1 / -2)."""
    if len(target) == 0:
        matched_idxs = torch.full(
            (len(anchor),), Matcher.BELOW_LOW_THRESHOLD, dtype=torch.int64, device=anchor.bbox.device
        )
        # The anchors themselves as stand-in targets keep the (unused) regression targets finite.
        placeholder = BoxList(anchor.bbox.clone(), anchor.size, mode="xyxy")
        for field in copied_fields:
            placeholder.add_field(field, torch.zeros(len(anchor), dtype=torch.int64, device=anchor.bbox.device))
        placeholder.add_field("matched_idxs", matched_idxs)
        return placeholder
    match_quality_matrix = boxlist_iou(target, anchor)
    matched_idxs = matcher(match_quality_matrix)
    matched = target.copy_with_fields(list(copied_fields))[matched_idxs.clamp(min=0)]
    matched.add_field("matched_idxs", matched_idxs)
    return matched


def generate_rpn_labels(matched_targets):
    """Binary objectness from the matcher's output: any match is an object."""
    return (matched_targets.get_field("matched_idxs") >= 0).to(torch.float32)


class RPNLossComputation(object):
    """Objectness and box losses of the RPN.

    ``use_sampler=True`` is the baseline: 256 anchors per image (half positive at most) are drawn
    and both losses are averaged over them. ``use_sampler=False`` is Sampling-Free: every valid
    anchor (not between the IoU thresholds, not straddling the border) is trained, the
    objectness BCE is summed and divided by the number of positives (paper eq. 13), and the box
    loss keeps the baseline's divisor (the number of anchors the sampler would have drawn) so that
    the localisation loss stays on the baseline's scale.
    """

    def __init__(self, proposal_matcher, fg_bg_sampler, box_coder, generate_labels_func, use_sampler=True):
        self.proposal_matcher = proposal_matcher
        self.fg_bg_sampler = fg_bg_sampler
        self.box_coder = box_coder
        self.generate_labels_func = generate_labels_func
        self.use_sampler = use_sampler
        self.copied_fields = []
        self.discard_cases = ["not_visibility", "between_thresholds"]

    def match_targets_to_anchors(self, anchor, target, copied_fields=()):
        return matched_ground_truth(self.proposal_matcher, anchor, target, copied_fields)

    def prepare_targets(self, anchors, targets):
        """Per image: objectness labels (1 / 0 / -1) and regression targets, one row per anchor."""
        labels, regression_targets = [], []
        for anchors_per_image, targets_per_image in zip(anchors, targets):
            matched = self.match_targets_to_anchors(anchors_per_image, targets_per_image, self.copied_fields)
            matched_idxs = matched.get_field("matched_idxs")
            labels_per_image = self.generate_labels_func(matched)

            labels_per_image[matched_idxs == Matcher.BETWEEN_THRESHOLDS] = IGNORE
            if "not_visibility" in self.discard_cases:
                labels_per_image[~anchors_per_image.get_field("visibility").bool()] = IGNORE

            regression_targets.append(self.box_coder.encode(matched.bbox, anchors_per_image.bbox))
            labels.append(labels_per_image)
        return labels, regression_targets

    def baseline_normalizer(self, labels):
        """How many anchors the biased sampler would draw for these labels (its loss divisor)."""
        total = 0
        for labels_per_image in labels:
            num_pos, num_neg = self.fg_bg_sampler.sample_counts(
                int((labels_per_image == 1).sum()), int((labels_per_image == 0).sum())
            )
            total += num_pos + num_neg
        return max(total, 1)

    def __call__(self, anchors, objectness, box_regression, targets):
        """``anchors``: per image, per level BoxLists; ``objectness``/``box_regression``: per level
        ``N x A x H x W`` / ``N x 4A x H x W``. Returns (objectness loss, box loss)."""
        anchors = [cat_boxlist(anchors_per_image) for anchors_per_image in anchors]
        labels, regression_targets = self.prepare_targets(anchors, targets)
        objectness, box_regression = concat_box_prediction_layers(objectness, box_regression)
        objectness = objectness.squeeze(1)
        labels = torch.cat(labels, dim=0)
        regression_targets = torch.cat(regression_targets, dim=0)

        if self.use_sampler:
            sampled_pos, sampled_neg = self.fg_bg_sampler(
                list(torch.split(labels, [len(a) for a in anchors]))
            )
            positive = torch.cat(sampled_pos, dim=0).bool()
            trained = positive | torch.cat(sampled_neg, dim=0).bool()
            cls_loss = F.binary_cross_entropy_with_logits(
                objectness[trained], labels[trained], reduction="sum"
            ) / max(int(trained.sum()), 1)
            box_divisor = max(int(trained.sum()), 1)
        else:
            positive = labels == 1
            trained = labels >= 0
            cls_loss = F.binary_cross_entropy_with_logits(
                objectness[trained], labels[trained], reduction="sum"
            ) / max(int(positive.sum()), 1)
            box_divisor = self.baseline_normalizer(torch.split(labels, [len(a) for a in anchors]))

        box_loss = smooth_l1_loss(
            box_regression[positive],
            regression_targets[positive],
            beta=1.0 / 9,
            size_average=False,
        ) / box_divisor
        return cls_loss, box_loss


def make_rpn_loss_evaluator(cfg, box_coder):
    matcher = Matcher(
        cfg.MODEL.RPN.FG_IOU_THRESHOLD,
        cfg.MODEL.RPN.BG_IOU_THRESHOLD,
        allow_low_quality_matches=True,
    )
    fg_bg_sampler = BalancedPositiveNegativeSampler(
        cfg.MODEL.RPN.BATCH_SIZE_PER_IMAGE, cfg.MODEL.RPN.POSITIVE_FRACTION
    )
    return RPNLossComputation(
        matcher,
        fg_bg_sampler,
        box_coder,
        generate_rpn_labels,
        use_sampler=cfg.MODEL.SAMPLING_FREE.RPN.SAMPLER,
    )
