"""Box head training targets and losses: softmax classification and per-class box regression."""
import torch
from torch.nn import functional as F

from maskrcnn_benchmark.layers import smooth_l1_loss
from maskrcnn_benchmark.modeling.balanced_positive_negative_sampler import (
    BalancedPositiveNegativeSampler,
)
from maskrcnn_benchmark.modeling.box_coder import BoxCoder
from maskrcnn_benchmark.modeling.matcher import Matcher
from maskrcnn_benchmark.modeling.rpn.loss import matched_ground_truth


class FastRCNNLossComputation(object):
    """Assigns proposals to ground truth and computes ``loss_classifier`` and ``loss_box_reg``.

    ``use_sampler=True`` (baseline): 512 proposals per image, at most 25 % foreground, are drawn;
    both losses are divided by the number drawn. ``use_sampler=False`` (Sampling-Free): every
    proposal with a label >= 0 is trained; the classification CE is summed and divided by the
    number of foreground proposals (paper eq. 13, at least 1), and the box loss keeps the
    baseline's divisor (how many proposals the sampler would have drawn).
    """

    def __init__(self, proposal_matcher, fg_bg_sampler, box_coder, cls_agnostic_bbox_reg=False, use_sampler=True):
        self.proposal_matcher = proposal_matcher
        self.fg_bg_sampler = fg_bg_sampler
        self.box_coder = box_coder
        self.cls_agnostic_bbox_reg = cls_agnostic_bbox_reg
        self.use_sampler = use_sampler
        self._proposals = None
        self._box_divisor = None

    def match_targets_to_proposals(self, proposal, target):
        return matched_ground_truth(self.proposal_matcher, proposal, target, copied_fields=("labels",))

    def prepare_targets(self, proposals, targets):
        """Per image: class labels (0 background, -1 ignored) and regression targets."""
        labels, regression_targets = [], []
        for proposals_per_image, targets_per_image in zip(proposals, targets):
            matched = self.match_targets_to_proposals(proposals_per_image, targets_per_image)
            matched_idxs = matched.get_field("matched_idxs")
            labels_per_image = matched.get_field("labels").to(torch.int64)
            labels_per_image[matched_idxs == Matcher.BELOW_LOW_THRESHOLD] = 0
            labels_per_image[matched_idxs == Matcher.BETWEEN_THRESHOLDS] = -1
            regression_targets.append(self.box_coder.encode(matched.bbox, proposals_per_image.bbox))
            labels.append(labels_per_image)
        return labels, regression_targets

    def subsample(self, proposals, targets):
        """Keep the proposals that are trained (sampled, or all with label >= 0) and attach
        their "labels" and "regression_targets"; remembers them for ``__call__``."""
        labels, regression_targets = self.prepare_targets(proposals, targets)
        for labels_per_image, targets_per_image, proposals_per_image in zip(
            labels, regression_targets, proposals
        ):
            proposals_per_image.add_field("labels", labels_per_image)
            proposals_per_image.add_field("regression_targets", targets_per_image)

        divisor = 0
        kept = []
        if self.use_sampler:
            sampled_pos, sampled_neg = self.fg_bg_sampler(labels)
            for pos, neg, proposals_per_image in zip(sampled_pos, sampled_neg, proposals):
                keep = (pos | neg).bool()
                kept.append(proposals_per_image[keep])
                divisor += int(keep.sum())
        else:
            for labels_per_image, proposals_per_image in zip(labels, proposals):
                kept.append(proposals_per_image[labels_per_image >= 0])
                num_pos, num_neg = self.fg_bg_sampler.sample_counts(
                    int((labels_per_image > 0).sum()), int((labels_per_image == 0).sum())
                )
                divisor += num_pos + num_neg
        self._proposals = kept
        self._box_divisor = max(divisor, 1)
        return kept

    def __call__(self, class_logits, box_regression):
        """``class_logits``/``box_regression``: lists (one tensor per call of the predictor) for
        the proposals returned by the last ``subsample``."""
        if self._proposals is None:
            raise RuntimeError("FastRCNNLossComputation: subsample() must be called before the loss")
        class_logits = torch.cat(class_logits, dim=0)
        box_regression = torch.cat(box_regression, dim=0)
        labels = torch.cat([p.get_field("labels") for p in self._proposals], dim=0)
        regression_targets = torch.cat([p.get_field("regression_targets") for p in self._proposals], dim=0)

        if self.use_sampler:
            classification_loss = F.cross_entropy(class_logits, labels, reduction="sum") / max(labels.numel(), 1)
        else:
            num_foreground = int((labels > 0).sum())
            classification_loss = F.cross_entropy(class_logits, labels, reduction="sum") / max(num_foreground, 1)

        positive = torch.nonzero(labels > 0).squeeze(1)
        positive_labels = labels[positive]
        if self.cls_agnostic_bbox_reg:
            columns = torch.arange(4, 8, device=class_logits.device).expand(len(positive), 4)
        else:
            columns = 4 * positive_labels[:, None] + torch.arange(4, device=class_logits.device)
        box_loss = smooth_l1_loss(
            box_regression[positive[:, None], columns],
            regression_targets[positive],
            beta=1,
            size_average=False,
        ) / self._box_divisor
        return classification_loss, box_loss


def make_roi_box_loss_evaluator(cfg):
    matcher = Matcher(
        cfg.MODEL.ROI_HEADS.FG_IOU_THRESHOLD,
        cfg.MODEL.ROI_HEADS.BG_IOU_THRESHOLD,
        allow_low_quality_matches=False,
    )
    box_coder = BoxCoder(weights=cfg.MODEL.ROI_HEADS.BBOX_REG_WEIGHTS)
    fg_bg_sampler = BalancedPositiveNegativeSampler(
        cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE, cfg.MODEL.ROI_HEADS.POSITIVE_FRACTION
    )
    return FastRCNNLossComputation(
        matcher,
        fg_bg_sampler,
        box_coder,
        cls_agnostic_bbox_reg=cfg.MODEL.CLS_AGNOSTIC_BBOX_REG,
        use_sampler=cfg.MODEL.SAMPLING_FREE.ROI.SAMPLER,
    )
