"""Which detector a config describes, and the user modules it asks to import first.

This is the one place that reads the ``MODEL.<NAME>_ON`` switches of maskrcnn-benchmark's yaml
files (RETINANET_ON, and ours for FCOS / ATSS / PAA). They stay the yaml interface: a config with
``META_ARCHITECTURE: "GeneralizedRCNN"`` and one switch on describes a dense (one-stage) detector,
the "DenseDetector" meta-architecture with the head registered under the switch's name. A config
may also say so directly: ``META_ARCHITECTURE: "DenseDetector"`` and ``DENSE_HEAD: "<name>"``.
Nothing here changes the config.
"""
import importlib

# MODEL.<flag> -> the name its head is registered under in registry.DENSE_HEADS
DENSE_HEAD_FLAGS = {"RETINANET_ON": "RetinaNet", "FCOS_ON": "FCOS", "ATSS_ON": "ATSS", "PAA_ON": "PAA"}
TWO_STAGE_META_ARCHITECTURE = "GeneralizedRCNN"
DENSE_META_ARCHITECTURE = "DenseDetector"


def dense_head_name(cfg):
    """The registered dense head a config asks for, "" when it describes no dense detector."""
    switched = [flag for flag in DENSE_HEAD_FLAGS if cfg.MODEL.get(flag, False)]
    if len(switched) > 1:
        raise ValueError("At most one of MODEL.{} may be True".format(", MODEL.".join(switched)))
    named = cfg.MODEL.DENSE_HEAD
    if not switched:
        return named
    from_flag = DENSE_HEAD_FLAGS[switched[0]]
    if named and named != from_flag:
        raise ValueError(
            f"MODEL.DENSE_HEAD={named!r} contradicts MODEL.{switched[0]}=True (which selects {from_flag!r}); "
            "set only one of them"
        )
    return from_flag


def is_dense_detector(cfg):
    """True for RetinaNet, FCOS, ATSS, PAA and any registered dense head: no RoI heads, the head's
    detections are the output (which RPN_ONLY, set in their yaml files, does not say alone)."""
    return bool(dense_head_name(cfg))


def meta_architecture_name(cfg):
    """The MODEL.META_ARCHITECTURE to build: the legacy switches turn GeneralizedRCNN into
    DenseDetector; DenseDetector without a head is an error naming the keys."""
    name = cfg.MODEL.META_ARCHITECTURE
    head = dense_head_name(cfg)
    if head and name == TWO_STAGE_META_ARCHITECTURE:
        return DENSE_META_ARCHITECTURE
    if name == DENSE_META_ARCHITECTURE and not head:
        raise ValueError(
            f"MODEL.META_ARCHITECTURE={name!r} needs a dense head: set MODEL.DENSE_HEAD to a registered "
            f"head, or one of MODEL.{', MODEL.'.join(DENSE_HEAD_FLAGS)}"
        )
    return name


def import_custom_modules(cfg):
    """Import every module named in CUSTOM_IMPORTS, so that what they register (a dense head, a
    sample strategy, ...) can be named in the same yaml."""
    for module_name in cfg.CUSTOM_IMPORTS:
        try:
            importlib.import_module(module_name)
        except ImportError as err:
            raise ImportError(f"CUSTOM_IMPORTS: cannot import {module_name!r}: {err}") from err
