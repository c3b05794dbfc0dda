"""``make_optimizer`` / ``make_lr_scheduler``: SGD with per-parameter groups and the warm-up schedule,
and the checks of the SOLVER keys that can be made before anything is built."""
import logging

import torch

from maskrcnn_benchmark.modeling.sampling_free import GuidedLossScaler

from .lr_scheduler import WarmupMultiStepLR, check_milestones

# Per-group settings that come from the config, never from a loaded state.
_CONFIGURED_SETTINGS = ("lr", "initial_lr", "weight_decay", "momentum", "dampening", "nesterov")


class ConfiguredSGD(torch.optim.SGD):
    """SGD whose hyper-parameters are the config's: ``load_state_dict`` restores the state (momentum
    buffers) and keeps each group's current learning rate, weight decay and momentum, so resuming
    with a changed SOLVER section trains with the changed values."""

    def load_state_dict(self, state_dict):
        configured = [{key: group[key] for key in _CONFIGURED_SETTINGS if key in group} for group in self.param_groups]
        super().load_state_dict(state_dict)
        for group, settings in zip(self.param_groups, configured):
            group.update(settings)


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
    return ConfiguredSGD(groups, lr=solver.BASE_LR, momentum=solver.MOMENTUM)


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


CLIP_TYPES = ("norm", "value")


def gradient_clipping(cfg):
    """``(clip_type, clip_value, norm_type)`` of SOLVER.CLIP_GRADIENTS, or None when it is off; a
    bad value is an error naming its key."""
    clip = cfg.SOLVER.CLIP_GRADIENTS
    if not clip.ENABLED:
        return None
    if clip.CLIP_TYPE not in CLIP_TYPES:
        raise ValueError(f"SOLVER.CLIP_GRADIENTS.CLIP_TYPE must be one of {CLIP_TYPES}, got {clip.CLIP_TYPE!r}")
    for key in ("CLIP_VALUE", "NORM_TYPE"):
        if not float(clip[key]) > 0:
            raise ValueError(f"SOLVER.CLIP_GRADIENTS.{key} must be > 0, got {clip[key]!r}")
    return clip.CLIP_TYPE, float(clip.CLIP_VALUE), float(clip.NORM_TYPE)


def check_solver_config(cfg, world_size=1):
    """Errors naming the SOLVER key, for values that would only fail (or silently misbehave) once
    training has started."""
    solver = cfg.SOLVER
    for key, minimum in (("MAX_ITER", 1), ("IMS_PER_BATCH", 1), ("LOG_PERIOD", 1), ("WARMUP_ITERS", 0),
                         ("CHECKPOINT_PERIOD", 0), ("TEST_PERIOD", 0)):
        if solver[key] < minimum:
            raise ValueError(f"SOLVER.{key} must be >= {minimum}, got {solver[key]}")
    if not solver.BASE_LR > 0:
        raise ValueError(f"SOLVER.BASE_LR must be > 0, got {solver.BASE_LR}")
    check_milestones(solver.STEPS)
    gradient_clipping(cfg)
    if solver.IMS_PER_BATCH % world_size != 0:
        raise ValueError(f"SOLVER.IMS_PER_BATCH ({solver.IMS_PER_BATCH}) is the global batch size and must be "
                         f"divisible by the number of processes ({world_size})")
