"""Guided loss scaling (paper eq. 20-24), and the authors' released variants for comparison.

The classification loss of a detector stage is rescaled so that its magnitude follows the stage's
localisation loss:  L = L_loc + g * delta * L_cls - log(delta),  with g = L_loc / L_cls treated as a
constant (no gradient flows through it) and delta > 0 a learnable scalar initialised to 1.

Since dL/d delta = g * L_cls - 1 / delta = L_loc - 1 / delta, delta settles where delta = 1 / L_loc,
and there g * delta * L_cls = 1: at equilibrium the scaled classification term is worth 1 and its
gradient is that of L_cls / L_cls. delta is a parameter of the model like any other: it gets the
base learning rate and schedule and no weight decay (decay would pull it towards 0 against the
-log(delta) term), so the mechanism adds no hyper-parameter (docs/RESULTS.md, "delta's dynamics").

Modes (``MODEL.SAMPLING_FREE.<STAGE>.GUIDED``):

- ``none``: L_cls * s with a fixed scale s (LOSS_SCALE; s = 1 is the plain baseline, Table I).
- ``guided``: the paper, g * delta * L_cls - log(delta) (the default of every Sampling-Free config).
- ``ratio``: g * L_cls, eq. 22 without delta.
- ``ratio_warmup_mean``: g averaged over the first RATIO_WARMUP_ITERS training iterations, then
  frozen at that average (a variant of this code base, not a release of the authors).
- ``release_2020``: what the authors' 2020 release (ChenJoya/sampling-free, May 2020) does: g * L_cls
  on the RPN and the RetinaNet head, 2 * g * L_cls on the RoI box head.
- ``release_2021``: what their 2021 release does. One-stage heads: the ratio r = (mean of the
  head's other losses) / L_cls of the current batch during the first RATIO_WARMUP_ITERS (100)
  iterations; at the last of them r is averaged over the processes and frozen; then EVERY loss of
  the head is weighted by learned uncertainties, L_i / (2 sigma_i^2), plus log(prod sigma_i)
  (sigma_i initialised to 1). RPN: g * L_cls; RoI box head: 2 * g * L_cls (as in 2020).
  Only the loss scaling is reproduced, not the releases' other differences.

Deprecated names (still accepted, with a warning): ``ratio_frozen`` = ``ratio_warmup_mean`` (it was
described as the 2021 release, which it is not).
"""
import warnings

import torch
from torch import nn

MODES = ("none", "guided", "ratio", "ratio_warmup_mean", "release_2020", "release_2021")
DEPRECATED_MODES = {"ratio_frozen": "ratio_warmup_mean"}
STAGES = ("ONE_STAGE", "RPN", "ROI")
# The releases' extra factor on the RoI box head's classification loss.
RELEASE_ROI_FACTOR = 2.0


def canonical_mode(mode, key="MODEL.SAMPLING_FREE.*.GUIDED"):
    """``mode`` under its current name (a deprecated one with a warning naming ``key``)."""
    if mode in DEPRECATED_MODES:
        warnings.warn(f"{key}: {mode!r} is deprecated, use {DEPRECATED_MODES[mode]!r} (same behaviour)",
                      FutureWarning, stacklevel=3)
        return DEPRECATED_MODES[mode]
    return mode


def _mean_over_processes(value):
    from maskrcnn_benchmark.modeling.dense_heads.normalizer import mean_over_processes

    return mean_over_processes(value)


class GuidedLossScaler(nn.Module):
    """Scales one stage's losses; owned by the head so that delta (and sigma) are optimised and saved.

    ``scaled_cls, extras = scaler(loss_cls, loss_loc, other_losses)``: the classification loss
    scaled, and ``extras`` with ``loss_<name>_log_delta`` (the -log(delta) term, ``guided``) and
    detached ``sf_<name>_*`` diagnostics. ``reweight(losses)`` then applies the 2021 release's
    uncertainty weights to the head's whole loss dict (identity in every other mode).
    ``stage``: ONE_STAGE, RPN or ROI (the releases treat them differently); ``num_loss_terms``:
    how many losses the head returns (the 2021 release learns one sigma per loss).

    The buffers are in every checkpoint, whatever the mode: ``last_ratio`` (the last usable ratio;
    ``release_2021``: the frozen ratio once frozen), ``ratio_sum`` / ``ratio_count`` (warm-up sum and
    iterations of ``ratio_warmup_mean``; ``release_2021`` counts its warm-up in ``ratio_count``).
    They are training state, not weights: a file from elsewhere (maskrcnn-benchmark's model zoo)
    loads without them, and they start from their initial values.
    """

    buffers_not_in_weights = ("last_ratio", "ratio_sum", "ratio_count")

    def __init__(self, name, mode="none", fixed_scale=1.0, ratio_warmup_iters=100, stage="ONE_STAGE",
                 num_loss_terms=2):
        super().__init__()
        mode = canonical_mode(mode)
        if mode not in MODES:
            raise ValueError(
                f"GuidedLossScaler '{name}': unknown mode {mode!r} (MODEL.SAMPLING_FREE.*.GUIDED); "
                f"expected one of {MODES} (deprecated: {tuple(DEPRECATED_MODES)})"
            )
        if stage not in STAGES:
            raise ValueError(f"GuidedLossScaler '{name}': unknown stage {stage!r}; stages are {STAGES}")
        if fixed_scale <= 0:
            raise ValueError(f"GuidedLossScaler '{name}': LOSS_SCALE must be > 0, got {fixed_scale}")
        self.name = name
        self.mode = mode
        self.stage = stage
        self.fixed_scale = float(fixed_scale)
        self.ratio_warmup_iters = int(ratio_warmup_iters)
        self.num_loss_terms = int(num_loss_terms)
        if mode == "guided":
            self.delta = nn.Parameter(torch.ones(()))
        if self.uses_uncertainty_weights:
            self.sigmas = nn.Parameter(torch.ones(self.num_loss_terms))
        # The last usable ratio stands in for batches whose ratio is undefined (no foreground, so
        # L_loc = 0); before any usable batch it is 0, which leaves the classifier untouched.
        self.register_buffer("last_ratio", torch.zeros(()))
        self.register_buffer("ratio_sum", torch.zeros((), dtype=torch.float64))
        self.register_buffer("ratio_count", torch.zeros((), dtype=torch.long))

    @classmethod
    def from_settings(cls, name, settings, num_loss_terms=2):
        """The scaler of a stage from its ``StageSettings`` (GUIDED, LOSS_SCALE, RATIO_WARMUP_ITERS)."""
        return cls(name, settings.guided, fixed_scale=settings.loss_scale,
                   ratio_warmup_iters=settings.ratio_warmup_iters, stage=settings.stage,
                   num_loss_terms=num_loss_terms)

    @property
    def uses_uncertainty_weights(self):
        return self.mode == "release_2021" and self.stage == "ONE_STAGE"

    @property
    def release_factor(self):
        return RELEASE_ROI_FACTOR if self.stage == "ROI" else 1.0

    def forward(self, loss_cls, loss_loc, other_losses=()):
        prefix = f"sf_{self.name}_"
        extras = {prefix + "cls": loss_cls.detach(), prefix + "loc": loss_loc.detach()}
        if self.mode == "none":
            scaled = loss_cls if self.fixed_scale == 1.0 else loss_cls * self.fixed_scale
            return scaled, extras

        if self.uses_uncertainty_weights:
            guide = sum(other_losses, loss_loc) / (1 + len(other_losses))
            ratio = self._frozen_ratio(loss_cls, guide)
        else:
            ratio = self._ratio(loss_cls, loss_loc)
        extras[prefix + "g"] = ratio
        if self.mode == "guided":
            # delta is kept positive by construction of its gradient (-1/delta pushes it up as it
            # nears 0); the clamp only guards against a pathological optimiser step.
            delta = self.delta.clamp(min=1e-6)
            extras["loss_" + self.name + "_log_delta"] = -torch.log(delta)
            extras[prefix + "delta"] = delta.detach()
            return ratio * delta * loss_cls, extras
        if self.mode in ("release_2020", "release_2021") and self.release_factor != 1.0:
            ratio = ratio * self.release_factor
        return ratio * loss_cls, extras

    def reweight(self, losses):
        """The 2021 release's uncertainty weighting of the head's losses (``losses``: the head's
        loss dict in order, classification first); every other mode returns them unchanged."""
        if not self.uses_uncertainty_weights:
            return losses
        if len(losses) != self.num_loss_terms:
            raise ValueError(
                f"GuidedLossScaler '{self.name}' (release_2021): the head returns {len(losses)} losses "
                f"{list(losses)}, but was built for {self.num_loss_terms} (its num_loss_terms)"
            )
        weighted = {key: loss / (2 * sigma ** 2) for (key, loss), sigma in zip(losses.items(), self.sigmas)}
        weighted[f"loss_{self.name}_log_sigma"] = torch.log(self.sigmas.prod())
        for i, sigma in enumerate(self.sigmas.detach()):
            weighted[f"sf_{self.name}_sigma{i}"] = sigma
        return weighted

    @staticmethod
    def _usable(loss_cls, guide):
        cls_value, guide_value = loss_cls.detach().float(), guide.detach().float()
        usable = bool(torch.isfinite(cls_value) & torch.isfinite(guide_value) & (cls_value > 0) & (guide_value > 0))
        return usable, (guide_value / cls_value if usable else None)

    @torch.no_grad()
    def _ratio(self, loss_cls, loss_loc):
        usable, current = self._usable(loss_cls, loss_loc)
        if usable:
            if self.training:
                self.last_ratio.copy_(current)
        else:
            current = self.last_ratio.clone()

        if self.mode == "ratio_warmup_mean":
            warming_up = int(self.ratio_count) < self.ratio_warmup_iters
            if warming_up and usable and self.training:
                self.ratio_sum += current.double()
                self.ratio_count += 1
            if not warming_up and int(self.ratio_count) > 0:
                current = (self.ratio_sum / self.ratio_count).float()
        return current.to(loss_cls.dtype)

    @torch.no_grad()
    def _frozen_ratio(self, loss_cls, guide):
        """release_2021: the batch's ratio while warming up; at the last warm-up iteration, that
        ratio averaged over processes, frozen from then on (``last_ratio``)."""
        if int(self.ratio_count) >= self.ratio_warmup_iters:
            return self.last_ratio.to(loss_cls.dtype)
        usable, current = self._usable(loss_cls, guide)
        current = current if usable else self.last_ratio.clone()
        if self.training:
            self.ratio_count += 1
            if int(self.ratio_count) == self.ratio_warmup_iters:
                current = _mean_over_processes(current)
            self.last_ratio.copy_(current)
        return current.to(loss_cls.dtype)

    def extra_repr(self):
        return f"name={self.name}, mode={self.mode}, stage={self.stage}, fixed_scale={self.fixed_scale}"

