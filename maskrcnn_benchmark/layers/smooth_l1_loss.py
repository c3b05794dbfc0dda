"""Smooth L1 (Huber-like) loss as used for box regression in Fast R-CNN and maskrcnn-benchmark."""
import torch


def smooth_l1_loss(input, target, beta=1.0 / 9, size_average=True):
    """0.5 * d^2 / beta where |d| < beta, |d| - 0.5 * beta elsewhere (d = input - target);
    beta = 0 is plain L1. Averaged over all elements when ``size_average``, else summed."""
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be >= 0, got {beta}")
    diff = torch.abs(input - target)
    if beta == 0:
        loss = diff
    else:
        loss = torch.where(diff < beta, 0.5 * diff ** 2 / beta, diff - 0.5 * beta)
    return loss.mean() if size_average else loss.sum()
