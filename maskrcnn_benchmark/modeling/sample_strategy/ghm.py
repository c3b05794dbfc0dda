""""ghm_c": the gradient harmonizing classification loss (GHM-C; Li, Liu and Wang, AAAI 2019).

For a sigmoid classifier every (sample, class) entry has the gradient norm g = |sigmoid(x) - y| of
its binary cross-entropy. [0, 1] is cut into ``BINS`` equal bins; the gradient density of a bin is
the number of entries in it, smoothed over iterations by an exponential moving average with
``MOMENTUM`` (S_j <- m S_j + (1 - m) R_j). Each entry's BCE is weighted by beta = N / (S_bin n),
N the number of valid entries, n the number of bins holding an entry this iteration, and the
loss is the weighted sum divided by N, i.e. a mean: easy entries (the crowd of well-classified
background at g ~ 0) and outliers (g ~ 1) are both down-weighted.

Two details follow the authors' released implementation (the one Table VIII's number comes from)
rather than the paper's equations, which use n = BINS and decay every bin's S_j: the weights are
divided by the number of non-empty bins (so that without the moving average they average to 1),
and only the bins that hold an entry this iteration update their S_j. The moving average starts
at 0, as released. Defaults are GHM's COCO setting: 30 bins, momentum 0.75.

The moving average is the buffer ``acc_sum`` (saved in checkpoints, e.g.
``rpn.soft_strategy.acc_sum`` for RetinaNet, and restored on resume); it is updated only by
training-mode forward calls. Normaliser contract: the loss is already a mean over the valid
entries, so it ``normalises_itself`` and the head does *not* divide it by the hard strategy's
divisor (the foreground count for dense heads): GHM-C replaces focal loss together with its
division by the number of positives, as in GHM. Each process normalises by its own entries.
"""
import torch
from torch.nn import functional as F

from .base import SIGMOID, SOFT_STRATEGIES, SoftStrategy, built_from_options, check_range
from .cross_entropy import one_hot_targets

DEFAULTS = {"BINS": 30, "MOMENTUM": 0.75}


@SOFT_STRATEGIES.register("ghm_c")
class GradientHarmonizedClassification(SoftStrategy):
    kinds = (SIGMOID,)
    normalises_itself = True

    def __init__(self, kind=SIGMOID, bins=30, momentum=0.75):
        super().__init__(kind)
        if int(bins) < 1:
            raise ValueError(f"ghm_c: BINS must be >= 1, got {bins}")
        self.bins = int(bins)
        self.momentum = check_range("ghm_c", "MOMENTUM", momentum, 0.0, 1.0, high_open=True)
        self.register_buffer("acc_sum", torch.zeros(self.bins, dtype=torch.float32))

    @classmethod
    def from_settings(cls, settings, kind):
        options = settings.options("SOFT", DEFAULTS)
        return built_from_options(settings, "SOFT", lambda: cls(kind, options["BINS"], options["MOMENTUM"]))

    def bin_of(self, gradient_norms):
        """Bin index of each gradient norm in [0, 1] (1 falls into the last bin)."""
        return (gradient_norms * self.bins).floor().long().clamp(0, self.bins - 1)

    def harmonizing_weights(self, logits, targets, update):
        """beta / N of every entry of ``logits`` (valid samples only, ``M x C``): 1 / (S_bin n).
        ``update``: store this iteration's moving average in ``acc_sum``."""
        with torch.no_grad():
            gradient_norms = (logits.float().sigmoid() - targets).abs()
            bins = self.bin_of(gradient_norms)
            counts = torch.bincount(bins.reshape(-1), minlength=self.bins).to(self.acc_sum.dtype)
            present = counts > 0
            if self.momentum > 0:
                density = torch.where(present, self.momentum * self.acc_sum + (1 - self.momentum) * counts,
                                      self.acc_sum)
                if update:
                    self.acc_sum.copy_(density)
            else:
                density = counts
            non_empty = present.sum().clamp(min=1)
            return 1.0 / (density[bins] * non_empty)

    def _weighted_bce(self, logits, labels, weights, update):
        """Per valid sample: its entries' BCE times beta / N; and the valid mask."""
        valid = labels >= 0
        logits = logits[valid]
        targets = one_hot_targets(labels[valid], logits.shape[1], torch.float32)
        beta = self.harmonizing_weights(logits, targets, update)
        bce = F.binary_cross_entropy_with_logits(logits.float(), targets, reduction="none")
        per_sample = (bce * beta).sum(dim=1)
        if weights is not None:
            per_sample = per_sample * weights[valid]
        return per_sample, valid

    def per_sample(self, logits, labels, context=None):
        """Each sample's share of the GHM-C loss (the moving average is read, not updated)."""
        per_valid, valid = self._weighted_bce(logits, labels, None, update=False)
        losses = per_valid.new_zeros(labels.shape)
        losses[valid] = per_valid
        return losses

    def forward(self, logits, labels, weights=None, context=None):
        per_valid, _ = self._weighted_bce(logits, labels, weights, update=self.training)
        return per_valid.sum()

    def extra_repr(self):
        return f"kind={self.kind}, bins={self.bins}, momentum={self.momentum}"
