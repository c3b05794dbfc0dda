"""From sample counts to classification biases (paper eq. 18-19)."""
import math

import torch


def prior_to_bias(pi):
    """The logit whose sigmoid is pi: b = -log((1 - pi) / pi)."""
    if not 0.0 < pi < 1.0:
        raise ValueError(f"a prior probability must lie in (0, 1), got {pi}")
    return -math.log((1.0 - pi) / pi)


def sigmoid_prior_from_counts(counts):
    """pi = N^f / N from ``[N, N^f]``; an empty count (no foreground) is an error, not a -inf bias."""
    total, foreground = float(counts[0]), float(counts[1])
    if total <= 0 or foreground <= 0 or foreground >= total:
        raise ValueError(
            f"cannot derive a prior from N={total:g}, N^f={foreground:g}: the sampled training images "
            "gave no foreground (or only foreground) samples; raise MODEL.SAMPLING_FREE.SAMPLE_IMAGES "
            "or check the annotations"
        )
    return foreground / total


def softmax_bias_from_counts(counts):
    """Biases whose softmax equals the class frequencies (background at index 0).

    A class never seen in the sample gets half a count, so its bias stays finite.
    """
    counts = torch.as_tensor(counts, dtype=torch.float64).clamp(min=0.5)
    return torch.log(counts / counts.sum())
