"""``make_optimizer`` / ``make_lr_scheduler``: SGD with per-parameter groups and the warm-up schedule."""
import logging

import torch

from maskrcnn_benchmark.modeling.sampling_free import GuidedLossScaler

from .lr_scheduler import WarmupMultiStepLR


def make_optimizer(cfg, model):
    """SGD over every trainable parameter of ``model``, one group per parameter.

    Biases get ``BASE_LR * BIAS_LR_FACTOR`` and ``WEIGHT_DECAY_BIAS``; the Sampling-Free scalars
    (delta) get ``BASE_LR`` and no weight decay; everything else ``BASE_LR`` and ``WEIGHT_DECAY``.
    """
    solver = cfg.SOLVER
    # The Sampling-Free delta lives in a GuidedLossScaler; weight decay would pull it towards 0,
    # against the -log(delta) term it is trained with.
    no_decay = set()
    for module in model.modules():
        if isinstance(module, GuidedLossScaler):
            no_decay.update(id(p) for p in module.parameters())

    groups = []
    seen = set()
    for name, param in model.named_parameters():
        if not param.requires_grad or id(param) in seen:
            continue
        seen.add(id(param))
        lr, weight_decay = solver.BASE_LR, solver.WEIGHT_DECAY
        if id(param) in no_decay:
            weight_decay = 0.0
        elif name.endswith("bias"):
            lr = solver.BASE_LR * solver.BIAS_LR_FACTOR
            weight_decay = solver.WEIGHT_DECAY_BIAS
        groups.append({"params": [param], "lr": lr, "weight_decay": weight_decay, "name": name})
    if not groups:
        raise ValueError("make_optimizer: the model has no trainable parameters (all have requires_grad=False)")
    logging.getLogger(__name__).debug("optimizer: %d parameter groups", len(groups))
    return torch.optim.SGD(groups, lr=solver.BASE_LR, momentum=solver.MOMENTUM)


def make_lr_scheduler(cfg, optimizer):
    solver = cfg.SOLVER
    return WarmupMultiStepLR(
        optimizer,
        solver.STEPS,
        solver.GAMMA,
        warmup_factor=solver.WARMUP_FACTOR,
        warmup_iters=solver.WARMUP_ITERS,
        warmup_method=solver.WARMUP_METHOD,
    )
