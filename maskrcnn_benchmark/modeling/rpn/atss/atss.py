"""ATSS (registered dense head "ATSS"; the yaml switch MODEL.ATSS_ON selects it): one square anchor
per location on P3-P7, adaptive training sample selection, centre-ness branch, GIoU box loss.

Sampling-Free: MODEL.SAMPLING_FREE.ONE_STAGE picks focal or CE classification, the guided loss
scaler (the GIoU loss guides the classification loss; centre-ness is left as it is) and the bias
initialisation.
"""
from maskrcnn_benchmark.modeling import registry
from maskrcnn_benchmark.modeling.box_coder import BoxCoder
from maskrcnn_benchmark.config.configurable import configurable
from maskrcnn_benchmark.modeling.dense_heads.head import DenseHead, dense_head_config
from maskrcnn_benchmark.modeling.rpn.anchor_generator import make_anchor_generator_retinanet
from maskrcnn_benchmark.modeling.rpn.atss.head import ATSSHead
from maskrcnn_benchmark.modeling.rpn.atss.inference import atss_postprocessor
from maskrcnn_benchmark.modeling.rpn.atss.loss import ATSSLossComputation

BOX_CODER_WEIGHTS = (10.0, 10.0, 5.0, 5.0)


class DenseAnchorModule(DenseHead):
    """What ATSS and PAA share: ATSSHead, anchors and box coder (in the box convention of the
    anchors), and the loss dict with the quality branch's loss under ``quality_loss_key``.
    Subclasses build ``loss_evaluator`` and ``box_selector_test``."""

    quality_loss_key = None
    num_loss_terms = 3  # classification, box, quality

    def __init__(self, name, head, anchor_generator, settings, size_divisibility):
        super().__init__(name, settings, head, anchor_generator, size_divisibility)
        self.box_coder = BoxCoder(weights=BOX_CODER_WEIGHTS, convention=anchor_generator.convention)

    @classmethod
    def common_config(cls, cfg, in_channels):
        """The arguments both take from their config group (MODEL.ATSS or MODEL.PAA); the anchors
        are centred at half the stride, as in the ATSS and PAA code bases."""
        group = cfg.MODEL[cls.config_group]
        return dict(
            dense_head_config(cfg, group),
            head=ATSSHead(group, in_channels, owner=f"MODEL.{cls.config_group}"),
            anchor_generator=make_anchor_generator_retinanet(cfg, group, centre_at_half_stride=True),
        )

    @property
    def anchor_generator(self):
        return self.position_generator

    def losses(self, predictions, anchors_per_level, targets):
        loss_cls, loss_reg, loss_quality = self.loss_evaluator(*predictions, targets, anchors_per_level)
        # The box loss guides the classification loss (identity with the default GUIDED "none").
        return self.scaled_losses("loss_cls", loss_cls, "loss_reg", loss_reg, **{self.quality_loss_key: loss_quality})

    def classification_layer(self):
        return self.head.cls_logits


@registry.DENSE_HEADS.register("ATSS")
class ATSSModule(DenseAnchorModule):
    config_group = "ATSS"
    quality_loss_key = "loss_centerness"

    @configurable
    def __init__(self, head, anchor_generator, settings, topk=9, reg_loss_weight=2.0, postprocess=None,
                 size_divisibility=0):
        super().__init__("atss", head, anchor_generator, settings, size_divisibility)
        self.loss_evaluator = ATSSLossComputation(
            self.soft_strategy, self.box_coder, topk, reg_loss_weight, hard_strategy=self.hard_strategy
        )
        self.box_selector_test = atss_postprocessor(self.box_coder, **(postprocess or {}))

    @classmethod
    def from_config(cls, cfg, in_channels):
        atss = cfg.MODEL.ATSS
        for key, implemented in (("POSITIVE_TYPE", "ATSS"), ("REGRESSION_TYPE", "BOX")):
            if atss[key] != implemented:
                raise ValueError(f"MODEL.ATSS.{key}={atss[key]!r} is not supported; only {implemented!r} is "
                                 "implemented")
        return dict(cls.common_config(cfg, in_channels), topk=atss.TOPK, reg_loss_weight=atss.REG_LOSS_WEIGHT)

    def assign(self, positions_per_level, target):
        return self.loss_evaluator.assign(positions_per_level, target)


def build_atss(cfg, in_channels):
    return ATSSModule(cfg, in_channels)
