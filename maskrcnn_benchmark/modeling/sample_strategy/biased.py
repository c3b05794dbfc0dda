""""biased": the fg / bg sampler of Faster R-CNN (the heuristic Sampling-Free removes), and the
per-image budget it shares with the samplers that choose differently (OHEM, IoU-balanced, ISR-N)."""
import torch

from maskrcnn_benchmark.modeling.balanced_positive_negative_sampler import BalancedPositiveNegativeSampler

from .base import HARD_STRATEGIES, HardStrategy, Selection, built_from_options


def sampler_budget(settings, strategy):
    """(BATCH_SIZE_PER_IMAGE, POSITIVE_FRACTION) of the stage, or an error naming the key."""
    if settings.batch_size_per_image is None:
        raise ValueError(
            f"{settings.key('HARD')}: {strategy!r} needs the stage's sampler budget "
            "(BATCH_SIZE_PER_IMAGE, POSITIVE_FRACTION); the settings give none (one-stage heads have none)"
        )
    return settings.batch_size_per_image, settings.positive_fraction


def random_subset(indices, count):
    """``count`` of ``indices`` drawn uniformly without replacement (all of them if fewer)."""
    return indices[torch.randperm(indices.numel(), device=indices.device)[:count]]


def topped_up(chosen, indices, count):
    """``chosen`` plus a uniform draw from the other ``indices``, up to ``count`` in all."""
    if chosen.numel() >= count:
        return chosen
    left = indices[~torch.isin(indices, chosen)]
    return torch.cat([chosen, random_subset(left, count - chosen.numel())])


class BudgetedSampling(HardStrategy):
    """Per image at most ``batch_size_per_image`` samples, at most a ``positive_fraction`` of them
    foreground and the rest background (no cap on negatives per positive); both losses divided by
    the number drawn. How the positives and the negatives are chosen is the subclass' rule:
    ``choose_positives`` / ``choose_negatives`` get the image's candidate indices of that kind, how
    many to keep and what ``image_inputs`` prepared for the image (e.g. its losses); the default
    draws uniformly at random. ``choose_negatives`` may also weight what it keeps (ISR-N)."""

    # The strategy's HARD_OPTIONS with their defaults; each reaches the constructor as the keyword
    # of its lower-case name (NUM_BINS -> num_bins), after the stage's budget.
    option_defaults = {}

    def __init__(self, batch_size_per_image, positive_fraction):
        self.sampler = BalancedPositiveNegativeSampler(batch_size_per_image, positive_fraction)

    @classmethod
    def from_settings(cls, settings):
        options = settings.options("HARD", cls.option_defaults)
        budget = sampler_budget(settings, settings.hard)
        return built_from_options(settings, "HARD", lambda: cls(
            *budget, **{name.lower(): value for name, value in options.items()}))

    def image_inputs(self, candidates):
        """Per image, what the choices need beyond the labels (None: nothing)."""
        return [None] * len(candidates.labels)

    def choose_positives(self, indices, count, inputs):
        return random_subset(indices, count)

    def choose_negatives(self, indices, count, inputs):
        """(chosen indices, their classification weights or None for 1)."""
        return random_subset(indices, count), None

    def select(self, candidates):
        masks, weights, any_weights = [], [], False
        for labels, inputs in zip(candidates.labels, self.image_inputs(candidates)):
            positive = torch.nonzero(labels > 0).squeeze(1)
            negative = torch.nonzero(labels == 0).squeeze(1)
            num_pos, num_neg = self.sampler.sample_counts(positive.numel(), negative.numel())
            chosen_pos = self.choose_positives(positive, num_pos, inputs)
            chosen_neg, neg_weights = self.choose_negatives(negative, num_neg, inputs)
            mask = torch.zeros_like(labels, dtype=torch.bool)
            mask[chosen_pos] = True
            mask[chosen_neg] = True
            masks.append(mask)
            image_weights = torch.ones(labels.shape, device=labels.device)
            if neg_weights is not None:
                image_weights[chosen_neg] = neg_weights.to(image_weights.dtype)
                any_weights = True
            weights.append(image_weights)
        drawn = max(sum(int(mask.sum()) for mask in masks), 1)
        return Selection(masks, cls_normalizer=drawn, loc_normalizer=drawn, weights=weights if any_weights else None)


@HARD_STRATEGIES.register("biased")
class BiasedSampling(BudgetedSampling):
    """Faster R-CNN's sampler: positives and negatives both drawn uniformly at random within the
    budget (maskrcnn-benchmark's ``BalancedPositiveNegativeSampler``, draw for draw)."""


def as_hard_strategy(sampler):
    """A hard strategy as it is; maskrcnn-benchmark's ``BalancedPositiveNegativeSampler`` (what a
    loss computation's ``fg_bg_sampler`` used to be) as the "biased" strategy it implements."""
    if isinstance(sampler, HardStrategy):
        return sampler
    if isinstance(sampler, BalancedPositiveNegativeSampler):
        return BiasedSampling(sampler.batch_size_per_image, sampler.positive_fraction)
    raise TypeError(f"expected a HardStrategy or a BalancedPositiveNegativeSampler, got {type(sampler).__name__}")
