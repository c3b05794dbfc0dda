"""Classification losses shared by the one-stage heads (RetinaNet, FCOS).

Both take logits ``[num_samples, num_classes]`` and integer labels ``[num_samples]`` where 0 is
background, ``1..num_classes`` a foreground class and a negative value an ignored sample, and both
return the *sum* over samples and classes: the caller normalises by the number of foreground samples
(paper eq. 13), so focal loss and cross-entropy share one normalisation.
"""
import torch
import torch.nn.functional as F

from maskrcnn_benchmark.layers import SigmoidFocalLoss

CLS_LOSS_KINDS = ("focal", "ce")


def one_hot_targets(labels, num_classes, dtype):
    """Per-class binary targets: column c is 1 where the label is class c + 1."""
    class_ids = torch.arange(1, num_classes + 1, device=labels.device)
    return (labels[:, None] == class_ids[None, :]).to(dtype)


class SigmoidCrossEntropyLoss(torch.nn.Module):
    """Plain per-class sigmoid cross-entropy over every valid sample: the Sampling-Free loss.

    Every (sample, class) pair of a non-ignored sample is one binary problem with weight 1, so no
    sample is re-weighted, unlike focal loss.
    """

    def forward(self, logits, labels):
        valid = labels >= 0
        logits = logits[valid]
        targets = one_hot_targets(labels[valid], logits.shape[1], logits.dtype)
        return F.binary_cross_entropy_with_logits(logits, targets, reduction="sum")


def make_one_stage_classification_loss(kind, gamma, alpha):
    """``kind`` is MODEL.SAMPLING_FREE.ONE_STAGE.CLS_LOSS: "focal" (baseline) or "ce"."""
    if kind == "focal":
        return SigmoidFocalLoss(gamma, alpha)
    if kind == "ce":
        return SigmoidCrossEntropyLoss()
    raise ValueError(
        "MODEL.SAMPLING_FREE.ONE_STAGE.CLS_LOSS must be one of {}, got {!r}".format(CLS_LOSS_KINDS, kind)
    )
