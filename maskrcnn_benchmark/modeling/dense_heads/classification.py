"""The classification step every dense head shares: strategies pick and weight, one normaliser divides.

The hard strategy (``MODEL.SAMPLING_FREE.ONE_STAGE.HARD``, "all" by default: every sample not
ignored) picks the trained samples and the two divisors; the soft strategy (``SOFT`` / ``CLS_LOSS``:
"focal" or "ce", or e.g. "ghm_c") sums their classification loss; the divisors are averaged across
processes. A soft strategy that normalises its loss itself (GHM-C, a mean over its valid entries)
is not divided by the classification divisor.
"""
import torch

from maskrcnn_benchmark.modeling.sample_strategy import Candidates, normalised_classification_loss

from .normalizer import cross_process_normalizer


def dense_classification_loss(hard_strategy, soft_strategy, logits, labels, ious=None):
    """``logits`` ``N x R x C`` and ``labels`` ``N x R`` (int64: -1 ignored, 0 background, > 0
    class; one row per image; ``ious`` likewise, each sample's best IoU with the ground truth, or
    None). Returns the classification loss and the localisation divisor (for the head's box and
    quality losses), both divided / averaged as described above."""
    selection = hard_strategy.select(Candidates(labels=list(labels), ious=None if ious is None else list(ious)))
    # Samples left out are marked ignored (-1) rather than cut out: the soft strategies skip -1,
    # and the N x R x C logits are not copied.
    labels = torch.where(torch.cat(selection.masks), labels.reshape(-1), torch.full_like(labels.reshape(-1), -1))
    weights = None if selection.weights is None else torch.cat(selection.weights)
    loss_cls = normalised_classification_loss(
        soft_strategy, logits.reshape(-1, logits.shape[-1]), labels,
        lambda: cross_process_normalizer(selection.cls_normalizer), weights=weights,
    )
    return loss_cls, cross_process_normalizer(selection.loc_normalizer)
