"""PAA's two-component 1-D Gaussian mixture and the split of a box's candidates it decides.

PAA (Kim & Lee, ECCV 2020, Sec. 3.1) models the scores (losses) of one box's candidate anchors as
a mixture of a low-loss (foreground) and a high-loss (background) Gaussian, fitted by
expectation-maximisation the way its public code fits it (scikit-learn's ``GaussianMixture`` with
``means_init = [min, max]``, ``weights_init = [1/2, 1/2]``, ``precisions_init = 1``): each variance
starts at 1, ``reg_covar`` (1e-6) is added to every variance estimate, and EM stops when the mean
log-likelihood per score changes by less than ``tol`` (1e-3) or after ``max_iter`` (100) steps.
The component started at the smallest score is the foreground one, whatever its final mean.

All boxes of an image are fitted at once: ``scores`` is ``[B, K]`` with a ``valid`` mask (boxes
have different numbers of candidates); each box converges on its own. Float64 throughout.
"""
import math
from dataclasses import dataclass

import torch

LOG_2PI = math.log(2.0 * math.pi)
FOREGROUND = 0  # the component whose mean starts at the smallest score


@dataclass
class TwoGaussianMixture:
    """``means``, ``variances``, ``weights``: ``[B, 2]`` (float64), component 0 = foreground.
    ``iterations`` ``[B]``: EM steps taken; ``converged`` ``[B]``: stopped by ``tol``."""

    means: torch.Tensor
    variances: torch.Tensor
    weights: torch.Tensor
    iterations: torch.Tensor
    converged: torch.Tensor

    def weighted_log_densities(self, scores):
        """``[B, K, 2]``: log(weight_k * N(score | mean_k, variance_k))."""
        x = scores.to(self.means.dtype)[..., None]
        means, variances = self.means[:, None, :], self.variances[:, None, :]
        return (
            torch.log(self.weights)[:, None, :]
            - 0.5 * (LOG_2PI + torch.log(variances))
            - (x - means) ** 2 / (2.0 * variances)
        )

    def log_densities(self, scores):
        """``[B, K]``: log of the mixture density at each score."""
        return torch.logsumexp(self.weighted_log_densities(scores), dim=-1)

    def predict(self, scores):
        """``[B, K]``: the component of highest weighted density (0 = foreground)."""
        return self.weighted_log_densities(scores).argmax(dim=-1)


def _masked_mean(values, valid, counts):
    return (values * valid).sum(dim=1) / counts


def fit_two_gaussians(scores, valid=None, max_iter=100, tol=1e-3, reg_covar=1e-6, initial_variance=1.0):
    """EM fit of one two-component mixture per row of ``scores`` (``[B, K]``, or ``[K]`` for one
    box) over its ``valid`` entries (all by default); rows with fewer than two valid scores are
    left at their initial state."""
    x = scores.detach().to(torch.float64)
    if x.dim() == 1:
        x = x[None]
        valid = None if valid is None else valid[None]
    valid = torch.ones_like(x, dtype=torch.bool) if valid is None else valid.to(torch.bool)
    weight = valid.to(torch.float64)
    counts = weight.sum(dim=1).clamp(min=1.0)
    big = torch.finfo(torch.float64).max
    means = torch.stack([torch.where(valid, x, big).min(dim=1).values,
                         torch.where(valid, x, -big).max(dim=1).values], dim=1)
    means = torch.where(valid.any(dim=1, keepdim=True), means, torch.zeros_like(means))
    mixture = TwoGaussianMixture(
        means=means,
        variances=torch.full_like(means, float(initial_variance)),
        weights=torch.full_like(means, 0.5),
        iterations=torch.zeros(x.shape[0], dtype=torch.long, device=x.device),
        converged=torch.zeros(x.shape[0], dtype=torch.bool, device=x.device),
    )
    active = valid.sum(dim=1) >= 2
    lower_bound = torch.full((x.shape[0],), -math.inf, dtype=torch.float64, device=x.device)
    tiny = 10 * torch.finfo(torch.float64).eps
    for _ in range(max_iter):
        if not bool(active.any()):
            break
        # E-step, and the mean log-likelihood of the parameters it used
        log_prob = mixture.weighted_log_densities(x)
        log_norm = torch.logsumexp(log_prob, dim=-1)
        mean_log_likelihood = _masked_mean(log_norm, weight, counts)
        resp = torch.exp(log_prob - log_norm[..., None]) * weight[..., None]
        # M-step
        mass = resp.sum(dim=1) + tiny
        means = (resp * x[..., None]).sum(dim=1) / mass
        variances = (resp * (x[..., None] - means[:, None, :]) ** 2).sum(dim=1) / mass + reg_covar
        weights = mass / mass.sum(dim=1, keepdim=True)
        keep = active[:, None]
        mixture.means = torch.where(keep, means, mixture.means)
        mixture.variances = torch.where(keep, variances, mixture.variances)
        mixture.weights = torch.where(keep, weights, mixture.weights)
        mixture.iterations += active.long()
        done = active & ((mean_log_likelihood - lower_bound).abs() < tol)
        lower_bound = torch.where(active, mean_log_likelihood, lower_bound)
        mixture.converged |= done
        active &= ~done
    return mixture


def split_by_mixture(scores, valid=None, **fit_options):
    """Positives among each box's candidates, PAA's scheme (c) as its public code cuts it.

    Per row: among the candidates the mixture puts in the foreground component, the one of highest
    mixture density sets the cut; every candidate scoring at most as much as it is positive (so a
    foreground candidate of higher score is not). When no candidate falls in the foreground
    component, all are positive; a single candidate is positive. PAA's code cuts its sorted list at
    the first candidate of highest density, which is the same set unless scores tie exactly (the
    constant predictions of an untrained network): tied candidates are then all in or all out here,
    whatever their order. Returns a bool mask like ``scores`` (False where not ``valid``).
    """
    single = scores.dim() == 1
    x = scores.detach().to(torch.float64)
    x = x[None] if single else x
    valid = torch.ones_like(x, dtype=torch.bool) if valid is None else (valid[None] if single else valid).to(torch.bool)
    mixture = fit_two_gaussians(x, valid, **fit_options)
    foreground = (mixture.predict(x) == FOREGROUND) & valid
    density = torch.where(foreground, mixture.log_densities(x), torch.tensor(-math.inf, dtype=x.dtype))
    best = density.argmax(dim=1, keepdim=True)
    cut = x.gather(1, best)
    no_foreground = ~foreground.any(dim=1, keepdim=True)
    positive = valid & ((x <= cut) | no_foreground)
    return positive[0] if single else positive
