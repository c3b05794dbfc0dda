"""How a one-stage head plugs into the Sampling-Free mechanism (modeling/sampling_free).

Two hooks, shared by RetinaNet and FCOS: the guided loss scaler built from
MODEL.SAMPLING_FREE.ONE_STAGE, and the optimal bias (eq. 18-19) written into the last
classification layer from counted samples.
"""
import torch

from maskrcnn_benchmark.modeling.sampling_free import (
    build_guided_loss_scaler,
    prior_to_bias,
    sigmoid_prior_from_counts,
)

STAGE = "ONE_STAGE"
BIAS_INIT_KINDS = ("default", "optimal")


def make_one_stage_loss_scaler(cfg, name):
    """GuidedLossScaler for a one-stage head; with the defaults it is the identity (s = 1)."""
    bias_init = cfg.MODEL.SAMPLING_FREE[STAGE].BIAS_INIT
    if bias_init not in BIAS_INIT_KINDS:
        # Checked here because the bias runner would silently treat a typo as "default".
        raise ValueError(
            "MODEL.SAMPLING_FREE.ONE_STAGE.BIAS_INIT must be one of {}, got {!r}".format(BIAS_INIT_KINDS, bias_init)
        )
    return build_guided_loss_scaler(cfg, name, STAGE)


def set_bias_to_prior(classifier, counts):
    """Fill ``classifier.bias`` so that every initial sigmoid output equals pi = N^f / N."""
    pi = sigmoid_prior_from_counts(torch.as_tensor(counts, dtype=torch.float64).flatten())
    bias = prior_to_bias(pi)
    with torch.no_grad():
        classifier.bias.fill_(bias)
    return {"pi": pi, "bias": bias}
