""""ohem": online hard example mining (Shrivastava et al., CVPR 2016) for the RoI head.

The box head scores every candidate proposal once without gradient (``Candidates.losses``); per
image the highest-loss positives (at most ``positive_fraction`` of the budget) and then the
highest-loss negatives fill the ``batch_size_per_image`` budget, with no cap on negatives per
positive; those are forwarded again with gradient. This is mmdetection's ``OHEMSampler`` setting
(512 RoIs, positive fraction 0.25, ``neg_pos_ub = -1``, ground truth among the proposals, which
our RPN adds in training), the one behind the paper's Table VIII row.

``LOSS`` (``HARD_OPTIONS``) is what the RoIs are ranked by: "classification" (default, as
mmdetection: the classification loss alone) or "total" (as the OHEM paper: classification plus
box regression; the two differ only for positives). Not included: the OHEM paper's NMS (IoU 0.7)
among the RoIs before ranking, which mmdetection does not do either.
"""
from .base import HARD_STRATEGIES
from .biased import BudgetedSampling

RANKINGS = {"classification": "classification_losses", "total": "losses"}


def highest(indices, count, values):
    """The ``count`` entries of ``indices`` with the highest ``values[indices]``."""
    return indices[values[indices].topk(count).indices]


@HARD_STRATEGIES.register("ohem")
class OnlineHardExampleMining(BudgetedSampling):
    option_defaults = {"LOSS": "classification"}

    def __init__(self, batch_size_per_image, positive_fraction, loss="classification"):
        super().__init__(batch_size_per_image, positive_fraction)
        if loss not in RANKINGS:
            raise ValueError(f"ohem: LOSS must be one of {tuple(RANKINGS)}, got {loss!r}")
        self.loss = loss

    def image_inputs(self, candidates):
        return candidates.require(RANKINGS[self.loss], "ohem")()

    def choose_positives(self, indices, count, losses):
        return highest(indices, count, losses)

    def choose_negatives(self, indices, count, losses):
        return highest(indices, count, losses), None
