"""Solver: warm-up / step learning-rate values against hand computation; optimizer groups."""
import pytest
import torch
from torch import nn

from maskrcnn_benchmark.config import cfg as global_cfg
from maskrcnn_benchmark.modeling.sampling_free import GuidedLossScaler
from maskrcnn_benchmark.solver import WarmupMultiStepLR, make_lr_scheduler, make_optimizer


def _lrs(scheduler, optimizer, steps):
    values = []
    for _ in range(steps):
        values.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return values


def _sgd(lr=0.1):
    return torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)


def test_linear_warmup_then_steps_match_hand_values():
    optimizer = _sgd(0.1)
    scheduler = WarmupMultiStepLR(optimizer, [5, 8], gamma=0.1, warmup_factor=1 / 3, warmup_iters=3,
                                  warmup_method="linear")
    # factor(it) = 1/3 * (1 - it/3) + it/3 for it < 3
    expected = [0.1 / 3, 0.1 * 5 / 9, 0.1 * 7 / 9, 0.1, 0.1, 0.01, 0.01, 0.01, 0.001, 0.001]
    assert _lrs(scheduler, optimizer, 10) == pytest.approx(expected, rel=1e-9)


def test_constant_warmup():
    optimizer = _sgd(0.2)
    scheduler = WarmupMultiStepLR(optimizer, [4], gamma=0.5, warmup_factor=0.25, warmup_iters=2,
                                  warmup_method="constant")
    assert _lrs(scheduler, optimizer, 6) == pytest.approx([0.05, 0.05, 0.2, 0.2, 0.1, 0.1])


def test_scheduler_state_round_trip_continues_the_schedule():
    optimizer = _sgd(0.1)
    scheduler = WarmupMultiStepLR(optimizer, [3], warmup_iters=2)
    _lrs(scheduler, optimizer, 4)
    state = scheduler.state_dict()
    optimizer2 = _sgd(0.1)
    scheduler2 = WarmupMultiStepLR(optimizer2, [3], warmup_iters=2)
    scheduler2.load_state_dict(state)
    scheduler2.step()
    scheduler.step()
    assert optimizer2.param_groups[0]["lr"] == pytest.approx(optimizer.param_groups[0]["lr"]) == pytest.approx(0.01)


def test_unsorted_milestones_and_bad_method_are_rejected():
    with pytest.raises(ValueError, match=r"SOLVER.STEPS.*\[8, 5\]"):
        WarmupMultiStepLR(_sgd(), [8, 5])
    with pytest.raises(ValueError, match="WARMUP_METHOD.*'cosine'"):
        WarmupMultiStepLR(_sgd(), [5], warmup_method="cosine")


class _Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.norm = nn.GroupNorm(2, 4)
        self.frozen = nn.Linear(4, 2)
        self.frozen.weight.requires_grad_(False)
        self.frozen.bias.requires_grad_(False)
        self.scaler = GuidedLossScaler("rpn", mode="guided")


def test_optimizer_groups_bias_factor_and_delta_without_decay():
    cfg = global_cfg.clone()
    cfg.merge_from_list(["SOLVER.BASE_LR", 0.02, "SOLVER.BIAS_LR_FACTOR", 2, "SOLVER.WEIGHT_DECAY", 1e-4,
                         "SOLVER.WEIGHT_DECAY_BIAS", 0, "SOLVER.MOMENTUM", 0.8])
    model = _Head()
    optimizer = make_optimizer(cfg, model)
    groups = {group["name"]: group for group in optimizer.param_groups}
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert set(groups) == trainable  # every trainable parameter once, frozen ones left out
    assert "scaler.delta" in groups
    assert groups["conv.weight"]["lr"] == pytest.approx(0.02)
    assert groups["conv.weight"]["weight_decay"] == pytest.approx(1e-4)
    assert groups["conv.bias"]["lr"] == pytest.approx(0.04)
    assert groups["conv.bias"]["weight_decay"] == 0.0
    assert groups["norm.bias"]["lr"] == pytest.approx(0.04)
    assert groups["scaler.delta"]["lr"] == pytest.approx(0.02)
    assert groups["scaler.delta"]["weight_decay"] == 0.0
    assert all(group["momentum"] == pytest.approx(0.8) for group in optimizer.param_groups)


def test_make_lr_scheduler_reads_the_config():
    cfg = global_cfg.clone()
    cfg.merge_from_list(["SOLVER.BASE_LR", 0.1, "SOLVER.STEPS", (2,), "SOLVER.WARMUP_ITERS", 0,
                         "SOLVER.GAMMA", 0.5])
    model = nn.Linear(2, 2)
    optimizer = make_optimizer(cfg, model)
    scheduler = make_lr_scheduler(cfg, optimizer)
    assert _lrs(scheduler, optimizer, 4) == pytest.approx([0.1, 0.1, 0.05, 0.05])
