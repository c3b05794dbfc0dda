"""Box head training targets and losses: softmax classification and per-class box regression."""
import torch
from torch.nn import functional as F

from maskrcnn_benchmark.layers import smooth_l1_loss
from maskrcnn_benchmark.modeling.box_coder import BoxCoder
from maskrcnn_benchmark.modeling.dense_heads.box_losses import aligned_iou_and_giou
from maskrcnn_benchmark.modeling.matcher import Matcher
from maskrcnn_benchmark.modeling.rpn.loss import assign_to_ground_truth, matched_ground_truth
from maskrcnn_benchmark.modeling.sample_strategy import (
    SOFTMAX,
    Candidates,
    CrossEntropy,
    TrainedSamples,
    as_hard_strategy,
    build_hard_strategy,
    build_soft_strategy,
    normalised_classification_loss,
)
from maskrcnn_benchmark.modeling.sampling_free.settings import stage_settings
from maskrcnn_benchmark.structures.box_convention import box_convention_from_config

BOX_LOSS_BETA = 1.0


class _CandidateScorer(object):
    """Classification scores, per-sample losses and decoded box predictions of every candidate
    proposal, from one forward of the box head without gradient, run the first time a hard
    strategy asks for any of them."""

    def __init__(self, predict, proposals, labels, regression_targets, loss_computation):
        self._predict = predict
        self._proposals = proposals
        self._labels = labels
        self._regression_targets = regression_targets
        self._loss_computation = loss_computation
        self._predictions = None

    def _predictions_once(self):
        if self._predictions is None:
            with torch.no_grad():
                self._predictions = self._predict(self._proposals)
        return self._predictions

    def _per_image(self, values):
        return list(values.split([len(p) for p in self._proposals]))

    def scores(self):
        class_logits, _ = self._predictions_once()
        return self._per_image(class_logits.softmax(dim=-1))

    def classification_losses(self):
        class_logits, _ = self._predictions_once()
        with torch.no_grad():
            return self._per_image(self._loss_computation.soft_strategy.per_sample(class_logits, torch.cat(self._labels)))

    def losses(self):
        _, box_regression = self._predictions_once()
        labels = torch.cat(self._labels, dim=0)
        with torch.no_grad():
            box = self._loss_computation.box_losses_per_sample(
                box_regression, labels, torch.cat(self._regression_targets, dim=0)
            )
        return [cls + b for cls, b in zip(self.classification_losses(), self._per_image(box))]

    def predicted_boxes(self, classes):
        """Per image, each candidate's decoded box for its class in ``classes`` (per image int64)."""
        _, box_regression = self._predictions_once()
        with torch.no_grad():
            return self._per_image(self._loss_computation.decoded_boxes(
                box_regression, torch.cat(classes), torch.cat([p.bbox for p in self._proposals])
            ))


def _class_labels(matched, proposals):
    """The matched box's class; 0 below the background threshold, -1 between the thresholds.
    Each proposal's matched ground-truth index and best IoU are kept on it ("matched_idxs",
    "matched_ious") for the soft strategy's context (``TrainedSamples``)."""
    matched_idxs = matched.get_field("matched_idxs")
    proposals.add_field("matched_idxs", matched_idxs)
    proposals.add_field("matched_ious", matched.get_field("matched_ious"))
    labels = matched.get_field("labels").to(torch.int64)
    labels[matched_idxs == Matcher.BELOW_LOW_THRESHOLD] = 0
    labels[matched_idxs == Matcher.BETWEEN_THRESHOLDS] = -1
    return labels


class FastRCNNLossComputation(object):
    """Assigns proposals to ground truth and computes ``loss_classifier`` and ``loss_box_reg``.

    Which proposals are trained, and by what both losses are divided, is the hard sample strategy
    ``fg_bg_sampler`` (a ``HardStrategy``; maskrcnn-benchmark's ``BalancedPositiveNegativeSampler``
    is accepted as the "biased" strategy). "biased" (baseline): 512 proposals per image, at most
    25 % foreground, both losses divided by the number drawn. "all" (Sampling-Free): every proposal
    with a label >= 0, the classification loss divided by the number of foreground proposals
    (paper eq. 13) and the box loss by the baseline's divisor. The classification loss is the soft
    strategy ``soft_strategy`` (softmax cross-entropy by default).
    """

    def __init__(self, proposal_matcher, fg_bg_sampler, box_coder, cls_agnostic_bbox_reg=False, soft_strategy=None):
        self.proposal_matcher = proposal_matcher
        self.fg_bg_sampler = as_hard_strategy(fg_bg_sampler)
        self.box_coder = box_coder
        self.cls_agnostic_bbox_reg = cls_agnostic_bbox_reg
        self.soft_strategy = soft_strategy if soft_strategy is not None else CrossEntropy(SOFTMAX)
        self._proposals = None
        self._selection = None
        self._weights = None

    def match_targets_to_proposals(self, proposal, target):
        return matched_ground_truth(self.proposal_matcher, proposal, target, copied_fields=("labels",),
                                    convention=self.box_coder.convention)

    def assign(self, proposals, targets):
        """Per image: class labels (0 background, -1 ignored), regression targets and each
        proposal's highest IoU with the ground truth."""
        return assign_to_ground_truth(proposals, targets, self.match_targets_to_proposals, _class_labels,
                                      self.box_coder)

    def prepare_targets(self, proposals, targets):
        """Per image: class labels (0 background, -1 ignored) and regression targets."""
        labels, regression_targets, _ = self.assign(proposals, targets)
        return labels, regression_targets

    def subsample(self, proposals, targets, predict=None):
        """Keep the proposals the hard strategy trains and attach their "labels" and
        "regression_targets"; remembers them and the strategy's divisors for ``__call__``.

        ``predict`` (optional): ``proposals -> (class_logits, box_regression)``, the box head's
        forward; a strategy that ranks candidates by score or loss (``Candidates.scores`` /
        ``losses``) gets it run once over all of them without gradient.
        """
        labels, regression_targets, ious = self.assign(proposals, targets)
        for labels_per_image, targets_per_image, proposals_per_image in zip(
            labels, regression_targets, proposals
        ):
            proposals_per_image.add_field("labels", labels_per_image)
            proposals_per_image.add_field("regression_targets", targets_per_image)

        candidates = Candidates(labels=labels, ious=ious)
        if predict is not None:
            scorer = _CandidateScorer(predict, proposals, labels, regression_targets, self)
            candidates.scores, candidates.losses = scorer.scores, scorer.losses
            candidates.classification_losses = scorer.classification_losses
            candidates.predicted_boxes = scorer.predicted_boxes
        selection = self.fg_bg_sampler.select(candidates)
        kept = [p[mask] for p, mask in zip(proposals, selection.masks)]
        self._proposals = kept
        self._selection = selection
        self._weights = None if selection.weights is None else torch.cat(
            [w[mask] for w, mask in zip(selection.weights, selection.masks)]
        )
        return kept

    def _regression_columns(self, labels, device):
        """The 4 columns of each sample's class-specific (or class-agnostic) box regression."""
        if self.cls_agnostic_bbox_reg:
            return torch.arange(4, 8, device=device).expand(len(labels), 4)
        return 4 * labels[:, None] + torch.arange(4, device=device)

    def decoded_boxes(self, box_regression, classes, proposal_boxes):
        """Each row's box prediction for its class in ``classes``, decoded against its proposal."""
        columns = self._regression_columns(classes, box_regression.device)
        return self.box_coder.decode(box_regression.gather(1, columns), proposal_boxes)

    def trained_samples(self, box_regression, labels):
        """The soft strategy's context for the proposals of the last ``subsample``."""
        proposals = self._proposals
        # Ground-truth boxes numbered across the batch: image i's box j is i * 2^32 + j.
        ground_truth = torch.cat([p.get_field("matched_idxs") + (image << 32) for image, p in enumerate(proposals)])
        ground_truth[labels <= 0] = -1

        def predicted_ious():
            with torch.no_grad():
                boxes = torch.cat([p.bbox for p in proposals])
                positive = labels > 0
                ious = boxes.new_zeros(len(labels))
                regression = box_regression.detach()[positive]
                predicted = self.decoded_boxes(regression, labels[positive], boxes[positive])
                targets = torch.cat([p.get_field("regression_targets") for p in proposals])[positive]
                truth = self.box_coder.decode(targets, boxes[positive])
                ious[positive] = aligned_iou_and_giou(predicted, truth.to(predicted.dtype))[0].to(ious.dtype)
            return ious

        return TrainedSamples(
            ious=torch.cat([p.get_field("matched_ious") for p in proposals]),
            ground_truth=ground_truth,
            predicted_ious=predicted_ious,
        )

    def box_losses_per_sample(self, box_regression, labels, regression_targets):
        """Smooth-L1 box loss of each sample (0 for background and ignored ones), unnormalised."""
        losses = box_regression.new_zeros(len(labels))
        positive = torch.nonzero(labels > 0).squeeze(1)
        columns = self._regression_columns(labels[positive], box_regression.device)
        per_coordinate = F.smooth_l1_loss(
            box_regression[positive[:, None], columns], regression_targets[positive],
            beta=BOX_LOSS_BETA, reduction="none",
        )
        losses[positive] = per_coordinate.sum(dim=1)
        return losses

    def __call__(self, class_logits, box_regression):
        """``class_logits``/``box_regression``: lists (one tensor per call of the predictor) for
        the proposals returned by the last ``subsample``."""
        if self._proposals is None:
            raise RuntimeError("FastRCNNLossComputation: subsample() must be called before the loss")
        class_logits = torch.cat(class_logits, dim=0)
        box_regression = torch.cat(box_regression, dim=0)
        labels = torch.cat([p.get_field("labels") for p in self._proposals], dim=0)
        regression_targets = torch.cat([p.get_field("regression_targets") for p in self._proposals], dim=0)

        classification_loss = normalised_classification_loss(
            self.soft_strategy, class_logits, labels, lambda: self._selection.cls_normalizer,
            weights=self._weights, context=self.trained_samples(box_regression, labels),
        )

        positive = torch.nonzero(labels > 0).squeeze(1)
        columns = self._regression_columns(labels[positive], class_logits.device)
        box_loss = smooth_l1_loss(
            box_regression[positive[:, None], columns],
            regression_targets[positive],
            beta=BOX_LOSS_BETA,
            size_average=False,
        ) / self._selection.loc_normalizer
        return classification_loss, box_loss


def make_roi_matcher(cfg):
    """The proposals' assignment: IoU >= FG_IOU_THRESHOLD foreground, < BG_IOU_THRESHOLD background."""
    return Matcher(cfg.MODEL.ROI_HEADS.FG_IOU_THRESHOLD, cfg.MODEL.ROI_HEADS.BG_IOU_THRESHOLD,
                   allow_low_quality_matches=False)


def make_roi_box_loss_evaluator(cfg, hard_strategy=None, soft_strategy=None):
    """The box-head loss of ``cfg``; the sample strategies default to those of MODEL.SAMPLING_FREE.ROI."""
    settings = stage_settings(cfg, "ROI")
    return FastRCNNLossComputation(
        make_roi_matcher(cfg),
        hard_strategy if hard_strategy is not None else build_hard_strategy(settings),
        BoxCoder(weights=cfg.MODEL.ROI_HEADS.BBOX_REG_WEIGHTS, convention=box_convention_from_config(cfg)),
        cls_agnostic_bbox_reg=cfg.MODEL.CLS_AGNOSTIC_BBOX_REG,
        soft_strategy=soft_strategy if soft_strategy is not None else build_soft_strategy(settings, SOFTMAX),
    )
