"""PAA (registered dense head "PAA"; the yaml switch MODEL.PAA_ON selects it): ATSS's head and
anchors with an IoU branch in place of centre-ness, probabilistic anchor assignment, GIoU / IoU box
loss.

Sampling-Free: MODEL.SAMPLING_FREE.ONE_STAGE picks focal or CE classification, the guided loss
scaler (the box loss guides the classification loss; the IoU branch is left as it is) and the bias
initialisation. For the optimal bias, N^f counts PAA's candidate anchors (the IoU rule of
``candidates.py``) without the mixture split: the split depends on the network's predictions,
which do not exist before training, so the count is an upper bound on the positives.
"""
import functools

import torch

from maskrcnn_benchmark.modeling import registry
from maskrcnn_benchmark.config.configurable import configurable
from maskrcnn_benchmark.modeling.rpn.atss.atss import DenseAnchorModule
from maskrcnn_benchmark.modeling.rpn.atss.inference import atss_postprocessor
from maskrcnn_benchmark.modeling.rpn.paa.inference import score_voting
from maskrcnn_benchmark.modeling.rpn.paa.loss import PAALossComputation


@registry.DENSE_HEADS.register("PAA")
class PAAModule(DenseAnchorModule):
    config_group = "PAA"
    quality_loss_key = "loss_iou"

    @configurable
    def __init__(self, head, anchor_generator, settings, iou_threshold=0.1, topk=9, reg_loss_type="giou",
                 reg_loss_weight=1.3, iou_loss_weight=0.5, use_score_voting=False, postprocess=None,
                 size_divisibility=0):
        super().__init__("paa", head, anchor_generator, settings, size_divisibility)
        self.loss_evaluator = PAALossComputation(
            self.soft_strategy, self.box_coder, iou_threshold, topk, reg_loss_type, reg_loss_weight, iou_loss_weight,
            hard_strategy=self.hard_strategy,
        )
        refine = functools.partial(score_voting, convention=self.box_coder.convention) if use_score_voting else None
        self.box_selector_test = atss_postprocessor(self.box_coder, refine, **(postprocess or {}))

    @classmethod
    def from_config(cls, cfg, in_channels):
        paa = cfg.MODEL.PAA
        return dict(
            cls.common_config(cfg, in_channels), iou_threshold=paa.IOU_THRESHOLD, topk=paa.TOPK,
            reg_loss_type=paa.REG_LOSS_TYPE, reg_loss_weight=paa.REG_LOSS_WEIGHT,
            iou_loss_weight=paa.IOU_LOSS_WEIGHT, use_score_voting=paa.INFERENCE_SCORE_VOTING,
        )

    def labels_for_counting(self, target, image_size):
        """Before training there are no predictions to split the candidates with: every candidate
        anchor counts as a positive of its box."""
        anchors_per_level = self.positions_for_image_size(image_size)
        target = target.to(self._device())
        labels = torch.zeros(sum(len(level) for level in anchors_per_level), dtype=torch.int64, device=self._device())
        anchor_idx, gt_idx = self.loss_evaluator.candidates(anchors_per_level, target)
        labels[anchor_idx] = target.get_field("labels").to(labels)[gt_idx]
        return labels


def build_paa(cfg, in_channels):
    return PAAModule(cfg, in_channels)
