""""iou_balanced": IoU-balanced negative sampling (Libra R-CNN, Pang et al., CVPR 2019).

Positives are drawn as by "biased" (uniformly, at most ``positive_fraction`` of the budget). The
negatives' IoU range is split evenly into ``NUM_BINS`` bins and the negative budget is shared
equally between them, each bin drawn uniformly; a bin with too few negatives gives all it has and
the shortfall is drawn uniformly from the negatives left over (so the budget is still filled
whenever there are enough negatives). This raises the share of hard negatives (high IoU), which
random sampling leaves rare.

Options (``HARD_OPTIONS``), with mmdetection's Libra R-CNN values as defaults: ``NUM_BINS`` (3),
``FLOOR_THRESH`` (-1: no floor) and ``FLOOR_FRACTION`` (0). With ``FLOOR_THRESH`` >= 0 the
negatives below it (for 0: those with IoU exactly 0) form a floor set, drawn uniformly for
``FLOOR_FRACTION`` of the negative budget, and only the others are binned.

The IoU interval that is binned runs from the floor (0 without one) to the highest IoU among the
image's binned negatives, i.e. the negatives' own range ("the sampling interval" of the paper,
about [0, BG_IOU_THRESHOLD)). mmdetection's ``IoUBalancedNegSampler`` bins [floor, the highest IoU
of any proposal, ground truth included, i.e. 1] instead, so with 3 bins and a 0.5 background
threshold its top bin holds no negative and its budget is drawn at random. Libra R-CNN's other
parts (balanced FPN, balanced L1 loss, instance-balanced positive sampling) are not included.
"""
import torch

from .base import HARD_STRATEGIES, check_range
from .biased import BudgetedSampling, random_subset, topped_up

DEFAULTS = {"NUM_BINS": 3, "FLOOR_THRESH": -1.0, "FLOOR_FRACTION": 0.0}


def iou_bins(ious, low, high, num_bins):
    """Bin index (0 .. num_bins - 1) of each IoU in [low, high], the top edge included."""
    width = max(high - low, 1e-12) / num_bins
    return ((ious - low) / width).floor().clamp(0, num_bins - 1).long()


@HARD_STRATEGIES.register("iou_balanced")
class IoUBalancedNegativeSampling(BudgetedSampling):
    option_defaults = DEFAULTS

    def __init__(self, batch_size_per_image, positive_fraction, num_bins=3, floor_thresh=-1.0, floor_fraction=0.0):
        super().__init__(batch_size_per_image, positive_fraction)
        if int(num_bins) < 1:
            raise ValueError(f"iou_balanced: NUM_BINS must be >= 1, got {num_bins}")
        self.num_bins = int(num_bins)
        self.floor_thresh = float(floor_thresh)
        self.floor_fraction = check_range("iou_balanced", "FLOOR_FRACTION", floor_fraction, 0.0, 1.0)

    def image_inputs(self, candidates):
        return candidates.require("ious", "iou_balanced")

    def floor_mask(self, ious):
        """Which negatives form the floor set (drawn at random, not binned)."""
        if self.floor_thresh < 0:
            return torch.zeros_like(ious, dtype=torch.bool)
        if self.floor_thresh == 0:
            return ious == 0
        return ious < self.floor_thresh

    def choose_negatives(self, indices, count, ious):
        if indices.numel() <= count:
            return indices, None
        negative_ious = ious[indices]
        in_floor = self.floor_mask(negative_ious)
        binned, floor = indices[~in_floor], indices[in_floor]
        binned_budget = int(count * (1.0 - self.floor_fraction))
        chosen = self.balanced_over_bins(binned, negative_ious[~in_floor], binned_budget)
        chosen = torch.cat([chosen, random_subset(floor, count - chosen.numel())])
        # A floor set too small leaves a shortfall: drawn from the negatives left.
        return topped_up(chosen, indices, count), None

    def balanced_over_bins(self, indices, ious, count):
        """``count`` of ``indices``, ``count // num_bins`` from each IoU bin, any shortfall drawn
        from the rest of them."""
        if indices.numel() <= count:
            return indices
        low = max(self.floor_thresh, 0.0)
        bins = iou_bins(ious, low, float(ious.max()), self.num_bins)
        per_bin = count // self.num_bins
        chosen = torch.cat([random_subset(indices[bins == b], per_bin) for b in range(self.num_bins)])
        return topped_up(chosen, indices, count)
