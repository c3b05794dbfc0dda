"""The Sampling-Free mechanism: no heuristic sampling, optimal bias init, guided loss scaling,
and the head protocol through which every detector head takes part in it."""
from .bias_init import classification_grad_norms, measure_and_apply_optimal_bias
from .guided_loss import MODES, GuidedLossScaler
from .head import SamplingFreeHead
from .priors import prior_to_bias, sigmoid_prior_from_counts, softmax_bias_from_counts
from .settings import StageSettings, check_sampling_free_config, stage_settings

__all__ = [
    "GuidedLossScaler",
    "MODES",
    "SamplingFreeHead",
    "StageSettings",
    "stage_settings",
    "check_sampling_free_config",
    "prior_to_bias",
    "sigmoid_prior_from_counts",
    "softmax_bias_from_counts",
    "measure_and_apply_optimal_bias",
    "classification_grad_norms",
]
