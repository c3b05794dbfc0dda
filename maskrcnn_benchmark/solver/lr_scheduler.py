"""Step-wise learning-rate decay with a warm-up phase, stepped once per training iteration.

The schedule is defined by its constructor arguments (the config); a saved state only says how far
along it is. Loading the state of a run with another schedule therefore continues at the same
iteration on the schedule given now, which is what resuming with a changed SOLVER.BASE_LR / STEPS
asks for.
"""
from bisect import bisect_right

import torch

WARMUP_METHODS = ("constant", "linear")


def check_milestones(milestones):
    milestones = list(milestones)
    if any(later <= earlier for earlier, later in zip(milestones, milestones[1:])):
        raise ValueError(f"WarmupMultiStepLR: milestones (SOLVER.STEPS) must be increasing integers, got {milestones}")


class WarmupMultiStepLR(torch.optim.lr_scheduler._LRScheduler):
    """lr = base_lr * warmup(it) * gamma ** (number of milestones <= it).

    During the first ``warmup_iters`` iterations the factor ``warmup(it)`` is ``warmup_factor``
    (``constant``) or rises linearly from ``warmup_factor`` at it = 0 to 1 at it = warmup_iters
    (``linear``); afterwards it is 1.
    """

    def __init__(self, optimizer, milestones, gamma=0.1, warmup_factor=1.0 / 3, warmup_iters=500,
                 warmup_method="linear", last_epoch=-1):
        milestones = list(milestones)
        check_milestones(milestones)
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

    def load_state_dict(self, state_dict):
        """Continue at the saved iteration on this scheduler's own schedule (see the module doc)."""
        self.last_epoch = int(state_dict["last_epoch"])
        self._step_count = int(state_dict.get("_step_count", self.last_epoch + 1))
        lrs = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        self._last_lr = lrs
