"""build_detection_model(cfg): the meta-architecture of ``cfg``, through registry.META_ARCHITECTURES.

Registered here: "GeneralizedRCNN" (backbone -> RPN -> RoI heads) and "DenseDetector" (backbone ->
one dense head; what maskrcnn-benchmark's MODEL.RETINANET_ON, and our FCOS_ON / ATSS_ON / PAA_ON,
select). The modules named in CUSTOM_IMPORTS are imported first, so that a yaml can name a
meta-architecture, a head or a strategy that a user module registers; then MODEL.SAMPLING_FREE is
validated.
"""
from maskrcnn_benchmark.modeling import registry
from maskrcnn_benchmark.modeling.architecture import import_custom_modules, meta_architecture_name
from maskrcnn_benchmark.modeling.sampling_free import check_sampling_free_config
from maskrcnn_benchmark.modeling.utils import registered

from .dense_detector import DenseDetector  # noqa: F401  (registers "DenseDetector")
from .generalized_rcnn import GeneralizedRCNN

registry.META_ARCHITECTURES.register("GeneralizedRCNN", GeneralizedRCNN)
# maskrcnn-benchmark's name for the table
_DETECTION_META_ARCHITECTURES = registry.META_ARCHITECTURES


def build_detection_model(cfg):
    import_custom_modules(cfg)
    # every stage's Sampling-Free keys, used by this detector or not: a typo stops any build
    check_sampling_free_config(cfg)
    return registered(registry.META_ARCHITECTURES, meta_architecture_name(cfg), "MODEL.META_ARCHITECTURE")(cfg)
