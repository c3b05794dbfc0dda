"""ATSS / PAA inference: the dense post-processor ranking anchors by sqrt(class probability x
quality probability), where the quality is the centre-ness (ATSS) or the predicted IoU (PAA), and
decoding them with the box coder."""
from maskrcnn_benchmark.modeling.dense_heads.postprocess import DensePostProcessor, geometric_mean_with_quality
from maskrcnn_benchmark.structures.box_convention import common_box_convention


def atss_postprocessor(box_coder, refine=None, **settings):
    """``refine``: PAA's score voting; ``settings`` as DensePostProcessor's (its ``convention``, if
    given, must be the box coder's)."""
    convention = common_box_convention("ATSS / PAA post-processor", box_coder=box_coder.convention,
                                       postprocess=settings.pop("convention", None))
    return DensePostProcessor(box_coder.decode, geometric_mean_with_quality, refine=refine, convention=convention,
                              **settings)


def make_atss_postprocessor(config, box_coder, head_cfg=None, refine=None):
    """From the head's config group (default MODEL.ATSS)."""
    head_cfg = config.MODEL.ATSS if head_cfg is None else head_cfg
    return atss_postprocessor(box_coder, refine, **DensePostProcessor.settings_from(head_cfg, config.TEST))
