"""The Sampling-Free settings of one detector stage, read from the config in one place.

``stage_settings(cfg, stage)`` turns ``MODEL.SAMPLING_FREE.<stage>`` (stage: ONE_STAGE, RPN or
ROI) into a ``StageSettings`` of plain values, validating every enum key and naming the key and
its allowed values on error. Heads receive the settings, never the config.

The sample strategy of a stage is ``HARD`` (which samples are trained) and ``SOFT`` (the
classification loss). Left empty they follow the older keys, so every existing yaml keeps its
meaning: RPN / ROI ``SAMPLER: True`` -> ``HARD: biased``, ``False`` -> ``all``, ``SOFT: ce``;
ONE_STAGE ``HARD: all`` and ``CLS_LOSS: focal / ce`` -> ``SOFT: focal / ce``. A legacy key left at
its default defers to an explicit HARD / SOFT; a legacy key set to something else that contradicts
it is an error naming both keys.
"""
from dataclasses import dataclass
from typing import Any, Optional, Tuple

from maskrcnn_benchmark.config.defaults import _C
from maskrcnn_benchmark.modeling.sample_strategy import hard_strategy_class, soft_strategy_class

from .guided_loss import MODES as GUIDED_MODES, canonical_mode

STAGES = ("ONE_STAGE", "RPN", "ROI")
BIAS_INITS = ("default", "optimal")
CLS_LOSSES = ("focal", "ce")
# Where the biased sampler's budget of a two-stage stage lives.
_SAMPLER_GROUPS = {"RPN": "RPN", "ROI": "ROI_HEADS"}
# At its default value (defaults.py) a legacy key defers to HARD / SOFT.
_DEFAULTS = _C.MODEL.SAMPLING_FREE


def _key(stage, name):
    return f"MODEL.SAMPLING_FREE.{stage}.{name}"


def _check_choice(stage, name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{_key(stage, name)}: {value!r} is not one of {tuple(allowed)}")


@dataclass(frozen=True)
class StageSettings:
    """Everything the Sampling-Free head protocol needs to know about one stage.

    ``hard`` / ``soft``: the sample strategy names (registries in modeling/sample_strategy).
    ``bias_init``: "default" or "optimal" (eq. 18-19, measured from data).
    ``guided``, ``loss_scale``, ``ratio_warmup_iters``: the GuidedLossScaler's mode and parameters.
    ``batch_size_per_image``, ``positive_fraction``: the biased sampler's budget of the stage (RPN
    and RoI head; None for dense heads), also the baseline whose loss divisor "all" keeps.
    ``focal_gamma``, ``focal_alpha``: the focal loss' parameters (the head's LOSS_GAMMA / ALPHA).
    ``hard_options`` / ``soft_options``: ``HARD_OPTIONS`` / ``SOFT_OPTIONS``, the chosen strategies'
    own parameters as sorted (name, value) pairs; a strategy reads them with ``options``.
    """

    stage: str
    hard: str
    soft: str
    bias_init: str = "default"
    guided: str = "none"
    loss_scale: float = 1.0
    ratio_warmup_iters: int = 100
    batch_size_per_image: Optional[int] = None
    positive_fraction: Optional[float] = None
    focal_gamma: float = 2.0
    focal_alpha: float = 0.25
    hard_options: Tuple[Tuple[str, Any], ...] = ()
    soft_options: Tuple[Tuple[str, Any], ...] = ()

    def __post_init__(self):
        if self.stage not in STAGES:
            raise ValueError(f"MODEL.SAMPLING_FREE: unknown stage {self.stage!r}; stages are {STAGES}")
        _check_choice(self.stage, "BIAS_INIT", self.bias_init, BIAS_INITS)
        _check_choice(self.stage, "GUIDED", self.guided, GUIDED_MODES)
        for name, value in (("HARD", self.hard), ("SOFT", self.soft)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{_key(self.stage, name)}: a strategy name is needed, got {value!r}")
        if not self.loss_scale > 0:
            raise ValueError(f"{_key(self.stage, 'LOSS_SCALE')} must be > 0, got {self.loss_scale}")

    def key(self, name):
        """The full config key of this stage's ``name`` (for error messages)."""
        return _key(self.stage, name)

    def options(self, which, defaults):
        """The ``which`` ("HARD" or "SOFT") strategy's parameters: ``defaults`` (every parameter it
        has, with its default) updated by ``<which>_OPTIONS``; a name it does not have is an error
        naming the key."""
        strategy, given = (self.hard, self.hard_options) if which == "HARD" else (self.soft, self.soft_options)
        unknown = sorted(set(dict(given)) - set(defaults))
        if unknown:
            raise KeyError(
                f"{self.key(which + '_OPTIONS')}.{unknown[0]}: {strategy!r} has no such parameter; "
                f"its parameters: {sorted(defaults)}"
            )
        return {**defaults, **dict(given)}


def _frozen_options(stage, name, node):
    """A ``*_OPTIONS`` group as sorted (name, value) pairs of plain values (lists become tuples)."""
    pairs = []
    for option, value in sorted(node.items()):
        if isinstance(value, dict):
            raise ValueError(f"{_key(stage, name)}.{option}: strategy parameters are plain values, not groups")
        pairs.append((option, tuple(value) if isinstance(value, list) else value))
    return tuple(pairs)


def _resolve(stage, name, explicit, legacy_name, legacy_value, legacy_default, derived):
    """An explicit strategy name, checked against the legacy key it may contradict, or ``derived``."""
    if not explicit:
        return derived
    if legacy_name is not None and legacy_value != legacy_default and explicit != derived:
        raise ValueError(
            f"{_key(stage, name)}: {explicit!r} contradicts {_key(stage, legacy_name)}: {legacy_value!r} "
            f"(which means {name} {derived!r}); set only one of the two"
        )
    return explicit


def stage_settings(cfg, stage, **overrides):
    """The validated settings of ``MODEL.SAMPLING_FREE.<stage>``; ``overrides`` set fields the
    stage's group does not hold (e.g. a dense head's ``focal_gamma``)."""
    if stage not in STAGES:
        raise ValueError(f"MODEL.SAMPLING_FREE: unknown stage {stage!r}; stages are {STAGES}")
    node = cfg.MODEL.SAMPLING_FREE[stage]
    _check_choice(stage, "BIAS_INIT", node.BIAS_INIT, BIAS_INITS)
    guided = canonical_mode(node.GUIDED, _key(stage, "GUIDED"))
    _check_choice(stage, "GUIDED", guided, GUIDED_MODES)
    values = {}
    if stage == "ONE_STAGE":
        _check_choice(stage, "CLS_LOSS", node.CLS_LOSS, CLS_LOSSES)
        values["hard"] = _resolve(stage, "HARD", node.HARD, None, None, None, "all")
        values["soft"] = _resolve(stage, "SOFT", node.SOFT, "CLS_LOSS", node.CLS_LOSS, _DEFAULTS.ONE_STAGE.CLS_LOSS,
                                  node.CLS_LOSS)
    else:
        if not isinstance(node.SAMPLER, bool):
            raise ValueError(f"{_key(stage, 'SAMPLER')}: must be True or False, got {node.SAMPLER!r}")
        values["hard"] = _resolve(stage, "HARD", node.HARD, "SAMPLER", node.SAMPLER, _DEFAULTS[stage].SAMPLER,
                                  "biased" if node.SAMPLER else "all")
        values["soft"] = _resolve(stage, "SOFT", node.SOFT, None, None, None, "ce")
        budget = cfg.MODEL[_SAMPLER_GROUPS[stage]]
        values["batch_size_per_image"] = budget.BATCH_SIZE_PER_IMAGE
        values["positive_fraction"] = budget.POSITIVE_FRACTION
    values.update(
        hard_options=_frozen_options(stage, "HARD_OPTIONS", node.HARD_OPTIONS),
        soft_options=_frozen_options(stage, "SOFT_OPTIONS", node.SOFT_OPTIONS),
        bias_init=node.BIAS_INIT,
        guided=guided,
        loss_scale=node.LOSS_SCALE,
        ratio_warmup_iters=cfg.MODEL.SAMPLING_FREE.RATIO_WARMUP_ITERS,
    )
    values.update(overrides)
    return StageSettings(stage=stage, **values)


def check_sampling_free_config(cfg):
    """Validate every stage of ``MODEL.SAMPLING_FREE``, used or not by the detector being built:
    its enum keys, and that its HARD / SOFT strategies are registered. Returns the settings."""
    settings = {}
    for stage in STAGES:
        settings[stage] = stage_settings(cfg, stage)
        hard_strategy_class(settings[stage].hard, _key(stage, "HARD"))
        soft_strategy_class(settings[stage].soft, _key(stage, "SOFT"))
    return settings
