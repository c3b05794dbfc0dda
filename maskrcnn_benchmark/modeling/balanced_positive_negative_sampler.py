"""The biased fg/bg sampler of Faster R-CNN (the heuristic that Sampling-Free removes)."""
import torch


class BalancedPositiveNegativeSampler(object):
    """Draws at most ``batch_size_per_image`` samples per image, at most a ``positive_fraction`` of
    them foreground, the rest filled with background, uniformly at random."""

    def __init__(self, batch_size_per_image, positive_fraction):
        self.batch_size_per_image = batch_size_per_image
        self.positive_fraction = positive_fraction

    def sample_counts(self, num_positive, num_negative):
        """How many positives and negatives one image contributes (also the loss normaliser)."""
        num_pos = min(int(self.batch_size_per_image * self.positive_fraction), int(num_positive))
        num_neg = min(self.batch_size_per_image - num_pos, int(num_negative))
        return num_pos, num_neg

    def __call__(self, matched_idxs):
        """``matched_idxs``: per image, a label tensor (1 fg, 0 bg, -1 ignored; or >= 1 for class
        labels). Returns two lists of per-image uint8 masks: sampled positives, sampled negatives."""
        pos_masks, neg_masks = [], []
        for labels in matched_idxs:
            positive = torch.nonzero(labels >= 1).squeeze(1)
            negative = torch.nonzero(labels == 0).squeeze(1)
            num_pos, num_neg = self.sample_counts(positive.numel(), negative.numel())

            chosen_pos = positive[torch.randperm(positive.numel(), device=positive.device)[:num_pos]]
            chosen_neg = negative[torch.randperm(negative.numel(), device=negative.device)[:num_neg]]

            pos_mask = torch.zeros_like(labels, dtype=torch.uint8)
            neg_mask = torch.zeros_like(labels, dtype=torch.uint8)
            pos_mask[chosen_pos] = 1
            neg_mask[chosen_neg] = 1
            pos_masks.append(pos_mask)
            neg_masks.append(neg_mask)
        return pos_masks, neg_masks
