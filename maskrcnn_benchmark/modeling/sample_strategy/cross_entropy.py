""""ce": plain cross-entropy, every chosen sample with weight 1 (Sampling-Free's loss)."""
import torch
from torch.nn import functional as F

from .base import SIGMOID, SOFT_STRATEGIES, SoftStrategy


def one_hot_targets(labels, num_classes, dtype):
    """Per-class binary targets: column c is 1 where the label is class c + 1."""
    class_ids = torch.arange(1, num_classes + 1, device=labels.device)
    return (labels[:, None] == class_ids[None, :]).to(dtype)


@SOFT_STRATEGIES.register("ce")
class CrossEntropy(SoftStrategy):
    """Sigmoid: per-class binary cross-entropy (C binary problems per sample). Softmax: the
    (C + 1)-way cross-entropy. Samples labelled -1 contribute nothing."""

    def per_sample(self, logits, labels, context=None):
        if self.kind == SIGMOID:
            targets = one_hot_targets(labels, logits.shape[1], logits.dtype)
            losses = F.binary_cross_entropy_with_logits(logits, targets, reduction="none").sum(dim=1)
            return losses * (labels >= 0).to(losses.dtype)
        return F.cross_entropy(logits, labels, ignore_index=-1, reduction="none")

    def forward(self, logits, labels, weights=None, context=None):
        if weights is not None:
            return super().forward(logits, labels, weights, context)
        if self.kind == SIGMOID:
            valid = labels >= 0
            logits = logits[valid]
            targets = one_hot_targets(labels[valid], logits.shape[1], logits.dtype)
            return F.binary_cross_entropy_with_logits(logits, targets, reduction="sum")
        return F.cross_entropy(logits, labels, ignore_index=-1, reduction="sum")
