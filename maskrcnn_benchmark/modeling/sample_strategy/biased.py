""""biased": the fg / bg sampler of Faster R-CNN (the heuristic Sampling-Free removes)."""
from maskrcnn_benchmark.modeling.balanced_positive_negative_sampler import BalancedPositiveNegativeSampler

from .base import HARD_STRATEGIES, HardStrategy, Selection


def sampler_budget(settings, strategy):
    """(BATCH_SIZE_PER_IMAGE, POSITIVE_FRACTION) of the stage, or an error naming the key."""
    if settings.batch_size_per_image is None:
        raise ValueError(
            f"{settings.key('HARD')}: {strategy!r} needs the stage's sampler budget "
            "(BATCH_SIZE_PER_IMAGE, POSITIVE_FRACTION); the settings give none (one-stage heads have none)"
        )
    return settings.batch_size_per_image, settings.positive_fraction


@HARD_STRATEGIES.register("biased")
class BiasedSampling(HardStrategy):
    """Per image, at most ``batch_size_per_image`` samples drawn uniformly at random, at most a
    ``positive_fraction`` of them foreground and the rest background; both losses are divided by
    the number drawn."""

    def __init__(self, batch_size_per_image, positive_fraction):
        self.sampler = BalancedPositiveNegativeSampler(batch_size_per_image, positive_fraction)

    @classmethod
    def from_settings(cls, settings):
        settings.options("HARD", {})
        return cls(*sampler_budget(settings, "biased"))

    def select(self, candidates):
        positive, negative = self.sampler(candidates.labels)
        masks = [(pos | neg).bool() for pos, neg in zip(positive, negative)]
        drawn = max(sum(int(mask.sum()) for mask in masks), 1)
        return Selection(masks, cls_normalizer=drawn, loc_normalizer=drawn)


def as_hard_strategy(sampler):
    """A hard strategy as it is; maskrcnn-benchmark's ``BalancedPositiveNegativeSampler`` (what a
    loss computation's ``fg_bg_sampler`` used to be) as the "biased" strategy it implements."""
    if isinstance(sampler, HardStrategy):
        return sampler
    if isinstance(sampler, BalancedPositiveNegativeSampler):
        return BiasedSampling(sampler.batch_size_per_image, sampler.positive_fraction)
    raise TypeError(f"expected a HardStrategy or a BalancedPositiveNegativeSampler, got {type(sampler).__name__}")
