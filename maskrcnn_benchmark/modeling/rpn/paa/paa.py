"""PAA module (built by build_rpn when MODEL.PAA_ON): ATSS's head and anchors with an IoU branch in
place of centre-ness, probabilistic anchor assignment, GIoU / IoU box loss.

Sampling-Free: MODEL.SAMPLING_FREE.ONE_STAGE picks focal or CE classification, the guided loss
scaler (the box loss guides the classification loss; the IoU branch is left as it is) and the bias
initialisation. For the optimal bias, N^f counts PAA's candidate anchors (the IoU rule of
``candidates.py``) without the mixture split: the split depends on the network's predictions,
which do not exist before training, so the count is an upper bound on the positives.
"""
import torch

from maskrcnn_benchmark.modeling.rpn.atss.atss import DenseAnchorModule
from maskrcnn_benchmark.modeling.rpn.paa.inference import make_paa_postprocessor
from maskrcnn_benchmark.modeling.rpn.paa.loss import make_paa_loss_evaluator


class PAAModule(DenseAnchorModule):
    sampling_free_name = "paa"
    quality_loss_key = "loss_iou"

    def __init__(self, cfg, in_channels):
        super().__init__(cfg, in_channels, cfg.MODEL.PAA, "MODEL.PAA")
        self.loss_evaluator = make_paa_loss_evaluator(cfg, self.box_coder)
        self.box_selector_test = make_paa_postprocessor(cfg, self.box_coder)

    def count_foreground(self, anchors_per_level, target):
        anchor_index, _ = self.loss_evaluator.candidates(anchors_per_level, target)
        return int(anchor_index.numel())


def build_paa(cfg, in_channels):
    return PAAModule(cfg, in_channels)
