"""The Sampling-Free mechanism: no heuristic sampling, optimal bias init, guided loss scaling."""
from .bias_init import (
    classification_grad_norms,
    measure_and_apply_optimal_bias,
    prior_to_bias,
    sigmoid_prior_from_counts,
    softmax_bias_from_counts,
)
from .guided_loss import MODES, GuidedLossScaler, build_guided_loss_scaler

__all__ = [
    "GuidedLossScaler",
    "build_guided_loss_scaler",
    "MODES",
    "prior_to_bias",
    "sigmoid_prior_from_counts",
    "softmax_bias_from_counts",
    "measure_and_apply_optimal_bias",
    "classification_grad_norms",
]
