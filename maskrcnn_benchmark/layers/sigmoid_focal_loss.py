"""Sigmoid focal loss (Lin et al., RetinaNet) with maskrcnn-benchmark's label convention.

``logits`` is N x C (one column per foreground class), ``targets`` holds N integer labels:
``c`` in 1..C makes column c - 1 positive and the other columns negative, 0 (background) makes
every column negative, and a negative label (-1) ignores the row. The functions return the
per-element loss; ``SigmoidFocalLoss`` sums it.
"""
import torch
import torch.nn.functional as F
from torch import nn

from ._ops import ops


def _check(logits, targets):
    if logits.dim() != 2:
        raise ValueError(f"sigmoid_focal_loss: logits must be N x num_classes, "
                         f"got shape {tuple(logits.shape)}")
    if targets.shape != logits.shape[:1]:
        raise ValueError(f"sigmoid_focal_loss: targets must hold one label per row of logits, "
                         f"got shape {tuple(targets.shape)} for logits {tuple(logits.shape)}")
    if targets.is_floating_point():
        raise TypeError(f"sigmoid_focal_loss: targets must be integer labels, got {targets.dtype}")


def sigmoid_focal_loss(logits, targets, gamma, alpha):
    """Per-element focal loss computed by the compiled kernel (CPU or CUDA)."""
    _check(logits, targets)
    return ops.sigmoid_focal_loss_forward(logits, targets, float(gamma), float(alpha))


def sigmoid_focal_loss_cpu(logits, targets, gamma, alpha):
    """Per-element focal loss written with plain tensor operations (any device).

    Same semantics as the compiled kernel; useful where the extension is unavailable and as a
    reference for it.
    """
    _check(logits, targets)
    classes = torch.arange(1, logits.shape[1] + 1, device=logits.device, dtype=targets.dtype)
    labels = targets.unsqueeze(1)
    positive = (labels == classes).to(logits.dtype)
    negative = ((labels != classes) & (labels >= 0)).to(logits.dtype)
    p = torch.sigmoid(logits)
    log_p = -F.softplus(-logits)
    log_1mp = -F.softplus(logits)
    positive_term = (1 - p) ** gamma * log_p
    negative_term = p ** gamma * log_1mp
    return -positive * alpha * positive_term - negative * (1 - alpha) * negative_term


class SigmoidFocalLoss(nn.Module):
    def __init__(self, gamma, alpha):
        super().__init__()
        self.gamma = gamma
        self.alpha = alpha

    def forward(self, logits, targets):
        return sigmoid_focal_loss(logits, targets, self.gamma, self.alpha).sum()

    def extra_repr(self):
        return f"gamma={self.gamma}, alpha={self.alpha}"
