"""Two sample strategies that live outside the package: registered here, named by a yaml
(toy_sample_strategies.yaml, which CUSTOM_IMPORTS this module), trained by tools/train_net.py
(tests/modeling/test_custom_sample_strategies.py). The recipe of docs/ARCHITECTURE.md, "Add a
sample strategy": one module, one registration each.

- "toy_top_loss" (hard): per image the PER_IMAGE candidates with the highest loss, computed by the
  head without gradient (an OHEM-like rule); both losses divided by the number kept.
- "toy_counting_ce" (soft): cross-entropy whose buffers (saved in checkpoints) count the calls and
  the samples it was last given; SCALE multiplies the loss.
"""
import torch

from maskrcnn_benchmark.modeling.sample_strategy import (
    HARD_STRATEGIES,
    SOFT_STRATEGIES,
    CrossEntropy,
    HardStrategy,
    Selection,
)


@HARD_STRATEGIES.register("toy_top_loss")
class TopLoss(HardStrategy):
    def __init__(self, per_image):
        self.per_image = per_image

    @classmethod
    def from_settings(cls, settings):
        return cls(settings.options("HARD", {"PER_IMAGE": 64})["PER_IMAGE"])

    def select(self, candidates):
        if candidates.losses is None:
            raise ValueError("toy_top_loss needs the candidates' losses (the RoI head gives them)")
        masks = []
        for labels, losses in zip(candidates.labels, candidates.losses()):
            losses = torch.where(labels >= 0, losses, torch.full_like(losses, -float("inf")))
            keep = losses.topk(min(self.per_image, int((labels >= 0).sum()))).indices
            mask = torch.zeros_like(labels, dtype=torch.bool)
            mask[keep] = True
            masks.append(mask)
        kept = max(sum(int(m.sum()) for m in masks), 1)
        return Selection(masks, cls_normalizer=kept, loc_normalizer=kept)


@SOFT_STRATEGIES.register("toy_counting_ce")
class CountingCrossEntropy(CrossEntropy):
    def __init__(self, kind, scale=1.0):
        super().__init__(kind)
        self.scale = float(scale)
        self.register_buffer("calls", torch.zeros((), dtype=torch.int64))
        self.register_buffer("last_num_samples", torch.zeros((), dtype=torch.int64))

    @classmethod
    def from_settings(cls, settings, kind):
        return cls(kind, settings.options("SOFT", {"SCALE": 1.0})["SCALE"])

    def forward(self, logits, labels, weights=None, context=None):
        if self.training:
            self.calls += 1
            self.last_num_samples.fill_(int((labels >= 0).sum()))
        return self.scale * super().forward(logits, labels, weights, context)
