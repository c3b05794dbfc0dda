"""PAA (registered dense head "PAA"; the yaml switch MODEL.PAA_ON selects it): ATSS's head and
anchors with an IoU branch in place of centre-ness, probabilistic anchor assignment, GIoU / IoU box
loss.

Sampling-Free: MODEL.SAMPLING_FREE.ONE_STAGE picks focal or CE classification, the guided loss
scaler (the box loss guides the classification loss; the IoU branch is left as it is) and the bias
initialisation. For the optimal bias, N^f counts the positives of PAA's own assignment under the
network's initial, constant predictions (every logit equal, zero regressions): candidates ranked by
the box loss of their anchor, split by the mixture, as the first training iteration will split them.
"""
import functools

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
            self.soft_strategy, self.box_coder, head.num_classes, iou_threshold, topk, reg_loss_type, reg_loss_weight,
            iou_loss_weight, hard_strategy=self.hard_strategy,
        )
        refine = functools.partial(score_voting, convention=self.box_coder.convention) if use_score_voting else None
        self.box_selector_test = atss_postprocessor(self.box_coder, refine, **(postprocess or {}))

    @classmethod
    def from_config(cls, cfg, in_channels):
        paa = cfg.MODEL.PAA
        if not paa.USE_IOU_PRED:
            raise ValueError("MODEL.PAA.USE_IOU_PRED False (a PAA head without its IoU prediction) is not "
                             "implemented; PAA's released configs all set True")
        # PAA's code trains GIoU for any REG_LOSS_TYPE naming an IoU loss, its default "iou" included.
        reg_loss_type = "giou" if paa.REG_LOSS_TYPE in ("iou", "giou") else paa.REG_LOSS_TYPE
        return dict(
            cls.common_config(cfg, in_channels), iou_threshold=paa.IOU_THRESHOLD, topk=paa.TOPK,
            reg_loss_type=reg_loss_type, reg_loss_weight=paa.REG_LOSS_WEIGHT,
            iou_loss_weight=paa.IOU_LOSS_WEIGHT, use_score_voting=paa.INFERENCE_SCORE_VOTING,
        )

    def assign(self, positions_per_level, target, logits=None, regression=None):
        """PAA's labels of one image (loss.py); without predictions, those of the initial network."""
        return self.loss_evaluator.assign(positions_per_level, target, logits, regression)


def build_paa(cfg, in_channels):
    return PAAModule(cfg, in_channels)
