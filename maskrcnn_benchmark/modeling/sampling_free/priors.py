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


def sigmoid_initial_loss(total, foreground, prior):
    """The cross-entropy of ``total`` binary problems, ``foreground`` of them positive, all predicted
    at probability ``prior``, summed and divided by ``foreground`` (eq. 13); at pi = N^f / N it is
    the smallest any constant prediction gives."""
    if foreground <= 0:
        return math.nan
    return -(foreground * math.log(prior) + (total - foreground) * math.log1p(-prior)) / foreground


def softmax_initial_loss(class_counts, probabilities):
    """The cross-entropy of samples counted per class (``class_counts``, background first), all
    predicted ``probabilities``, summed and divided by the foreground count (eq. 13)."""
    counts = torch.as_tensor(class_counts, dtype=torch.float64)
    probabilities = torch.as_tensor(probabilities, dtype=torch.float64)
    foreground = float(counts[1:].sum())
    if foreground <= 0:
        return math.nan
    seen = counts > 0
    return float(-(counts[seen] * torch.log(probabilities[seen])).sum()) / foreground
