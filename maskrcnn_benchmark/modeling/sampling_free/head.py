"""The Sampling-Free head protocol: what every head whose classification loss the paper changes
(RPN, RoI box head, RetinaNet, FCOS, ATSS, PAA) shares, written once.

A head subclasses ``SamplingFreeHead`` and supplies three things: its classifier (``classifier_kind``
and number of classes, given to ``__init__``), its last classification layer
(``classification_layer``) and its own assignment of the samples it trains
(``labels_for_counting``). The base class owns the rest:

- ``loss_scaler``: the stage's GuidedLossScaler (the attribute name is part of checkpoint keys);
- ``hard_strategy`` / ``soft_strategy``: the sample strategies named by the stage settings;
- ``scaled_losses``: the scaler applied to (L_cls, L_loc) and its extras merged, for the loss dict;
- ``count_samples`` / ``set_bias_from_counts``: the optimal bias (eq. 18-19), sigmoid or softmax form;
- ``wants_optimal_bias``: whether the stage asks for it (``BIAS_INIT: optimal``).
"""
import torch
from torch import nn

from maskrcnn_benchmark.modeling.sample_strategy import (
    CLASSIFIER_KINDS,
    SIGMOID,
    build_hard_strategy,
    build_soft_strategy,
)

from .guided_loss import GuidedLossScaler
from .priors import prior_to_bias, sigmoid_prior_from_counts, softmax_bias_from_counts


class SamplingFreeHead(nn.Module):
    """Base class of the detector heads that Sampling-Free acts on.

    ``name``: the head's short name ("rpn", "roi", "retina", ...) used in loss and log keys and in
    the count cache. ``settings``: its stage's ``StageSettings``. ``classifier_kind``: "sigmoid"
    (``num_classes`` foreground columns, each a binary problem; 1 for the RPN's objectness) or
    "softmax" (``num_classes`` foreground classes plus background at index 0).
    """

    # How many losses the head's ``scaled_losses`` receives (classification, localisation, others);
    # the 2021 release's uncertainty weighting learns one sigma per loss.
    num_loss_terms = 2

    def __init__(self, name, settings, classifier_kind, num_classes):
        super().__init__()
        if classifier_kind not in CLASSIFIER_KINDS:
            raise ValueError(f"{type(self).__name__}: classifier_kind must be one of {CLASSIFIER_KINDS}, "
                             f"got {classifier_kind!r}")
        if num_classes < 1:
            raise ValueError(f"{type(self).__name__}: needs at least one foreground class, got {num_classes}")
        self.sampling_free_name = name
        self.sampling_free_settings = settings
        self.classifier_kind = classifier_kind
        self.num_foreground_classes = int(num_classes)
        self.loss_scaler = GuidedLossScaler.from_settings(name, settings, num_loss_terms=type(self).num_loss_terms)
        self.hard_strategy = build_hard_strategy(settings)
        self.soft_strategy = build_soft_strategy(settings, classifier_kind)

    # ---- what a head supplies ---------------------------------------------------------------
    def classification_layer(self):
        """The last classification conv / linear (its bias is the optimal-bias target, its
        gradient norm a diagnostic)."""
        raise NotImplementedError(f"{type(self).__name__} must implement classification_layer()")

    def labels_for_counting(self, target, image_size):
        """The labels (int64: -1 ignored, 0 background, > 0 class) of the samples this head trains
        on at initialisation, for one image of ``image_size`` (height, width) with ground truth
        ``target``, from the head's own anchors / points and assignment (no network forward)."""
        raise NotImplementedError(f"{type(self).__name__} must implement labels_for_counting()")

    # ---- losses -------------------------------------------------------------------------------
    @property
    def wants_optimal_bias(self):
        return self.sampling_free_settings.bias_init == "optimal"

    def scaled_losses(self, cls_key, loss_cls, loc_key, loss_loc, **other_losses):
        """The head's loss dict: the classification loss through the guided loss scaler (guided by
        the localisation loss), the localisation loss, ``other_losses`` untouched (but for the
        2021 release's uncertainty weights, which weigh all of them), then the scaler's extras
        (``loss_<name>_log_delta`` and the ``sf_<name>_*`` diagnostics)."""
        scaled_cls, extras = self.loss_scaler(loss_cls, loss_loc, tuple(other_losses.values()))
        losses = {cls_key: scaled_cls, loc_key: loss_loc}
        losses.update(other_losses)
        losses = self.loss_scaler.reweight(losses)
        losses.update(extras)
        return losses

    # ---- optimal bias (paper eq. 18-19) ----------------------------------------------------------
    def empty_counts(self):
        """Zero counts of the right shape: ``[N, N^f]`` (sigmoid) or one per class (softmax)."""
        size = 2 if self.classifier_kind == SIGMOID else self.num_foreground_classes + 1
        return torch.zeros(size, dtype=torch.float64)

    def counting_levels(self, image_size):
        """``[(name, size), ...]``: how many of ``labels_for_counting``'s samples each pyramid level
        holds, in their order; None where the samples are not laid out by level (the RoI head's
        proposals). Used by the per-level imbalance report."""
        return None

    def _counts_of(self, labels):
        valid = labels[labels >= 0]
        if self.classifier_kind == SIGMOID:
            return torch.tensor([valid.numel() * self.num_foreground_classes, int((valid > 0).sum())],
                                dtype=torch.float64)
        size = self.num_foreground_classes + 1
        return torch.bincount(valid, minlength=size)[:size].to(torch.float64)

    @torch.no_grad()
    def count_samples(self, targets, image_sizes):
        """Counts over the images of ``image_sizes`` ((height, width)) with ground truth ``targets``.

        Sigmoid: ``[N, N^f]`` with N = valid samples x classes (each is one binary problem per class)
        and N^f = foreground samples. Softmax: valid samples per class, background first.
        """
        counts = self.empty_counts()
        for target, image_size in zip(targets, image_sizes):
            counts += self._counts_of(self.labels_for_counting(target, image_size).flatten().cpu())
        return counts

    @torch.no_grad()
    def count_samples_by_level(self, targets, image_sizes):
        """``(level names, counts [levels, ...])``: ``count_samples``' counts per pyramid level
        (``counting_levels``), or one level "all" for a head without levels."""
        names, counts = None, None
        for target, image_size in zip(targets, image_sizes):
            labels = self.labels_for_counting(target, image_size).flatten().cpu()
            levels = self.counting_levels(image_size) or [("all", labels.numel())]
            if names is None:
                names, counts = [name for name, _ in levels], torch.zeros(len(levels), self.empty_counts().numel(),
                                                                           dtype=torch.float64)
            for row, part in enumerate(labels.split([size for _, size in levels])):
                counts[row] += self._counts_of(part)
        return names, counts

    @torch.no_grad()
    def set_bias_from_counts(self, counts):
        """Set the classification bias from ``count_samples``' counts; returns what was set.

        Sigmoid: every logit's bias b = -log((1 - pi) / pi) with pi = N^f / N. Softmax: biases whose
        softmax equals the class frequencies.
        """
        bias_param = self.classification_layer().bias
        counts = torch.as_tensor(counts, dtype=torch.float64).flatten()
        if self.classifier_kind == SIGMOID:
            pi = sigmoid_prior_from_counts(counts)
            bias = prior_to_bias(pi)
            bias_param.fill_(bias)
            return {"pi": pi, "bias": bias}
        bias = softmax_bias_from_counts(counts)
        if bias.numel() != bias_param.numel():
            raise ValueError(
                f"{self.sampling_free_name} optimal bias: {bias.numel()} class counts for a classifier "
                f"with {bias_param.numel()} outputs"
            )
        bias_param.copy_(bias.to(bias_param.dtype))
        return {"pi": torch.softmax(bias, dim=0).tolist(), "bias": bias.tolist()}
