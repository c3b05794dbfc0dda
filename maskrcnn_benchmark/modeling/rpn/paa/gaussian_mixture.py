"""A two-component 1-D Gaussian mixture fitted by expectation-maximisation.

PAA models the scores (losses) of one box's candidate anchors as a mixture of a low-loss
(foreground) and a high-loss (background) Gaussian. The fit starts from the smallest and largest
score as the two means, the overall variance for both components and equal weights, and runs a few
EM steps in float64 (a box has a few dozen candidates, so this is cheap).
"""
import math
from dataclasses import dataclass, field

import torch

LOG_2PI = math.log(2.0 * math.pi)


@dataclass
class TwoGaussianMixture:
    means: torch.Tensor  # [2], index 0 starts at the smallest score
    variances: torch.Tensor  # [2]
    weights: torch.Tensor  # [2]
    log_likelihoods: list = field(default_factory=list)  # total log-likelihood before each step and at the end

    def component_log_densities(self, scores):
        """``[n, 2]``: log(weight_k * N(score | mean_k, variance_k))."""
        x = scores.to(self.means.dtype)[:, None]
        return (
            torch.log(self.weights)[None, :]
            - 0.5 * (LOG_2PI + torch.log(self.variances))[None, :]
            - (x - self.means[None, :]) ** 2 / (2.0 * self.variances[None, :])
        )

    def responsibilities(self, scores):
        return torch.softmax(self.component_log_densities(scores), dim=1)

    def log_likelihood(self, scores):
        return float(torch.logsumexp(self.component_log_densities(scores), dim=1).sum())

    def predict(self, scores):
        """Component of each score: 0 for the lower-mean component, 1 for the other."""
        components = self.component_log_densities(scores).argmax(dim=1)
        if self.means[0] > self.means[1]:
            components = 1 - components
        return components

    @property
    def low_component(self):
        return int(torch.argmin(self.means))


def fit_two_gaussians(scores, num_iters=10, min_variance=1e-6, tol=1e-9):
    """EM fit of a two-component mixture to the 1-D ``scores`` (at least two values)."""
    x = scores.detach().to(torch.float64).flatten()
    if x.numel() < 2:
        raise ValueError(f"fit_two_gaussians needs at least 2 scores, got {x.numel()}")
    overall_variance = max(float(x.var(unbiased=False)), min_variance)
    mixture = TwoGaussianMixture(
        means=torch.stack([x.min(), x.max()]),
        variances=torch.full((2,), overall_variance, dtype=torch.float64, device=x.device),
        weights=torch.full((2,), 0.5, dtype=torch.float64, device=x.device),
    )
    previous = mixture.log_likelihood(x)
    mixture.log_likelihoods.append(previous)
    for _ in range(num_iters):
        resp = mixture.responsibilities(x)  # E-step
        mass = resp.sum(dim=0).clamp(min=1e-12)  # M-step
        means = (resp * x[:, None]).sum(dim=0) / mass
        variances = ((resp * (x[:, None] - means[None, :]) ** 2).sum(dim=0) / mass).clamp(min=min_variance)
        mixture = TwoGaussianMixture(means, variances, mass / x.numel(), mixture.log_likelihoods)
        current = mixture.log_likelihood(x)
        mixture.log_likelihoods.append(current)
        if current - previous < tol:
            break
        previous = current
    return mixture


def split_by_mixture(scores):
    """Positives among one box's candidates, PAA's scheme (c).

    Fit the mixture, then take as positive every candidate whose score is at most that of the
    low-component member nearest the low component's mean (the "centre of the positive
    distribution"). Returns a bool mask over ``scores``. Fewer than two candidates, or identical
    scores, leave nothing to separate: all of them are positive.
    """
    if scores.numel() < 2 or bool((scores == scores.flatten()[0]).all()):
        return torch.ones_like(scores, dtype=torch.bool)
    mixture = fit_two_gaussians(scores)
    low = mixture.low_component
    in_low = mixture.predict(scores) == 0
    if not bool(in_low.any()):
        return torch.zeros_like(scores, dtype=torch.bool)
    distance_to_mean = (scores.to(torch.float64) - mixture.means[low]).abs()
    distance_to_mean[~in_low] = float("inf")
    boundary = scores[distance_to_mean.argmin()]
    return scores <= boundary
