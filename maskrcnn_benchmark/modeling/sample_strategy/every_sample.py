""""all": Sampling-Free's choice, every sample that is not ignored."""
from maskrcnn_benchmark.modeling.balanced_positive_negative_sampler import BalancedPositiveNegativeSampler

from .base import HARD_STRATEGIES, HardStrategy, Selection, foreground_count


@HARD_STRATEGIES.register("all")
class AllSamples(HardStrategy):
    """Every sample with a label >= 0 is trained (ignored ones stay ignored).

    The summed classification loss is divided by the number of foreground samples (paper eq. 13,
    at least 1). The localisation loss keeps the divisor of the stage's baseline, so that it stays
    on the scale the baseline's hyper-parameters were tuned for: for a stage with a sampler budget
    (RPN, RoI head) the number of samples the biased sampler would have drawn from these labels,
    otherwise (dense heads) the number of foreground samples.
    """

    def __init__(self, batch_size_per_image=None, positive_fraction=None):
        self.baseline_sampler = (
            None if batch_size_per_image is None
            else BalancedPositiveNegativeSampler(batch_size_per_image, positive_fraction)
        )

    @classmethod
    def from_settings(cls, settings):
        settings.options("HARD", {})
        return cls(settings.batch_size_per_image, settings.positive_fraction)

    def select(self, candidates):
        labels = candidates.labels
        num_foreground = max(foreground_count(labels), 1)
        if self.baseline_sampler is None:
            loc_normalizer = num_foreground
        else:
            drawn = 0
            for labels_per_image in labels:
                num_pos, num_neg = self.baseline_sampler.sample_counts(
                    int((labels_per_image > 0).sum()), int((labels_per_image == 0).sum())
                )
                drawn += num_pos + num_neg
            loc_normalizer = max(drawn, 1)
        masks = [labels_per_image >= 0 for labels_per_image in labels]
        return Selection(masks, cls_normalizer=num_foreground, loc_normalizer=loc_normalizer)
