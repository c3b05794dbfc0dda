"""Step-wise learning-rate decay with a warm-up phase, stepped once per training iteration."""
from bisect import bisect_right

import torch

WARMUP_METHODS = ("constant", "linear")


class WarmupMultiStepLR(torch.optim.lr_scheduler._LRScheduler):
    """lr = base_lr * warmup(it) * gamma ** (number of milestones <= it).

    During the first ``warmup_iters`` iterations the factor ``warmup(it)`` is ``warmup_factor``
    (``constant``) or rises linearly from ``warmup_factor`` at it = 0 to 1 at it = warmup_iters
    (``linear``); afterwards it is 1.
    """

    def __init__(self, optimizer, milestones, gamma=0.1, warmup_factor=1.0 / 3, warmup_iters=500,
                 warmup_method="linear", last_epoch=-1):
        milestones = list(milestones)
        if milestones != sorted(milestones):
            raise ValueError(f"WarmupMultiStepLR: milestones (SOLVER.STEPS) must be increasing integers, got {milestones}")
        if warmup_method not in WARMUP_METHODS:
            raise ValueError(
                f"WarmupMultiStepLR: warmup_method (SOLVER.WARMUP_METHOD) must be one of {WARMUP_METHODS}, got {warmup_method!r}"
            )
        self.milestones = milestones
        self.gamma = gamma
        self.warmup_factor = warmup_factor
        self.warmup_iters = warmup_iters
        self.warmup_method = warmup_method
        super().__init__(optimizer, last_epoch)

    def _warmup_multiplier(self, iteration):
        if iteration >= self.warmup_iters:
            return 1.0
        if self.warmup_method == "constant":
            return self.warmup_factor
        progress = iteration / self.warmup_iters
        return self.warmup_factor * (1 - progress) + progress

    def get_lr(self):
        iteration = self.last_epoch
        decay = self.gamma ** bisect_right(self.milestones, iteration)
        warmup = self._warmup_multiplier(iteration)
        return [base_lr * warmup * decay for base_lr in self.base_lrs]
