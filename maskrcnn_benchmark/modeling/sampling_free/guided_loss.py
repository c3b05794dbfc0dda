"""Guided loss scaling (paper eq. 20-24).

The classification loss of a detector stage is rescaled so that its magnitude follows the stage's
localisation loss:  L = L_loc + g * delta * L_cls - log(delta),  with g = L_loc / L_cls treated as a
constant (no gradient flows through it) and delta > 0 a learnable scalar initialised to 1.

Besides the paper's form, the released variants are available for comparison:

- ``none``: L_cls * s with a fixed scale s (s = 1 is the plain baseline; other values give Table I).
- ``guided``: the paper, g * delta * L_cls - log(delta).
- ``ratio``: g * L_cls, no delta (the authors' 2020 release).
- ``ratio_frozen``: g averaged over the first iterations, then frozen (the authors' 2021 release).
"""
import torch
from torch import nn

MODES = ("none", "guided", "ratio", "ratio_frozen")


class GuidedLossScaler(nn.Module):
    """Scales one stage's classification loss; owned by the head so delta is optimised and saved.

    ``scaled_cls, extras = scaler(loss_cls, loss_loc)``. ``extras`` holds ``loss_<name>_log_delta``
    (the -log(delta) term, in ``guided`` mode) and detached ``sf_<name>_*`` diagnostics.
    """

    def __init__(self, name, mode="none", fixed_scale=1.0, ratio_warmup_iters=100):
        super().__init__()
        if mode not in MODES:
            raise ValueError(
                f"GuidedLossScaler '{name}': unknown mode {mode!r} (MODEL.SAMPLING_FREE.*.GUIDED); "
                f"expected one of {MODES}"
            )
        if fixed_scale <= 0:
            raise ValueError(f"GuidedLossScaler '{name}': LOSS_SCALE must be > 0, got {fixed_scale}")
        self.name = name
        self.mode = mode
        self.fixed_scale = float(fixed_scale)
        self.ratio_warmup_iters = int(ratio_warmup_iters)
        if mode == "guided":
            self.delta = nn.Parameter(torch.ones(()))
        # The last usable ratio stands in for batches whose ratio is undefined (no foreground, so
        # L_loc = 0); before any usable batch it is 0, which leaves the classifier untouched.
        self.register_buffer("last_ratio", torch.zeros(()))
        # Running sum for ratio_frozen; buffers so that a resumed run continues exactly.
        self.register_buffer("ratio_sum", torch.zeros((), dtype=torch.float64))
        self.register_buffer("ratio_count", torch.zeros((), dtype=torch.long))

    @classmethod
    def from_settings(cls, name, settings):
        """The scaler of a stage from its ``StageSettings`` (GUIDED, LOSS_SCALE, RATIO_WARMUP_ITERS)."""
        return cls(name, settings.guided, fixed_scale=settings.loss_scale,
                   ratio_warmup_iters=settings.ratio_warmup_iters)

    def forward(self, loss_cls, loss_loc):
        prefix = f"sf_{self.name}_"
        extras = {prefix + "cls": loss_cls.detach(), prefix + "loc": loss_loc.detach()}
        if self.mode == "none":
            scaled = loss_cls if self.fixed_scale == 1.0 else loss_cls * self.fixed_scale
            return scaled, extras

        ratio = self._ratio(loss_cls, loss_loc)
        extras[prefix + "g"] = ratio
        if self.mode == "guided":
            # delta is kept positive by construction of its gradient (-1/delta pushes it up as it
            # nears 0); the clamp only guards against a pathological optimiser step.
            delta = self.delta.clamp(min=1e-6)
            extras["loss_" + self.name + "_log_delta"] = -torch.log(delta)
            extras[prefix + "delta"] = delta.detach()
            return ratio * delta * loss_cls, extras
        return ratio * loss_cls, extras

    @torch.no_grad()
    def _ratio(self, loss_cls, loss_loc):
        cls_value, loc_value = loss_cls.detach().float(), loss_loc.detach().float()
        usable = bool(torch.isfinite(cls_value) & torch.isfinite(loc_value) & (cls_value > 0) & (loc_value > 0))
        if usable:
            current = loc_value / cls_value
            if self.training:
                self.last_ratio.copy_(current)
        else:
            current = self.last_ratio.clone()

        if self.mode == "ratio_frozen":
            warming_up = int(self.ratio_count) < self.ratio_warmup_iters
            if warming_up and usable and self.training:
                self.ratio_sum += current.double()
                self.ratio_count += 1
            if not warming_up and int(self.ratio_count) > 0:
                current = (self.ratio_sum / self.ratio_count).float()
        return current.to(loss_cls.dtype)

    def extra_repr(self):
        return f"name={self.name}, mode={self.mode}, fixed_scale={self.fixed_scale}"
