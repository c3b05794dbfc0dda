"""build_dense_head(cfg, in_channels): the registered dense head a config names.

The heads this package ships register themselves when their module is imported; their modules are
listed in BUILTIN_DENSE_HEADS and imported on first use (the heads import this kit, so the kit
cannot import them at load time). A head of your own registers the same way from your module,
which the yaml's CUSTOM_IMPORTS imports before the model is built.
"""
import importlib

from maskrcnn_benchmark.modeling import registry
from maskrcnn_benchmark.modeling.architecture import dense_head_name

BUILTIN_DENSE_HEADS = (
    "maskrcnn_benchmark.modeling.rpn.retinanet.retinanet",
    "maskrcnn_benchmark.modeling.rpn.fcos.fcos",
    "maskrcnn_benchmark.modeling.rpn.atss.atss",
    "maskrcnn_benchmark.modeling.rpn.paa.paa",
)


def registered_dense_heads():
    """The names in registry.DENSE_HEADS, the built-in heads included."""
    for module_name in BUILTIN_DENSE_HEADS:
        importlib.import_module(module_name)
    return sorted(registry.DENSE_HEADS)


def build_dense_head(cfg, in_channels):
    """The dense head of ``cfg`` (MODEL.DENSE_HEAD or a MODEL.<NAME>_ON switch) on ``in_channels``-wide
    features, built from the arguments its ``from_config(cfg, in_channels)`` reads."""
    name = dense_head_name(cfg)
    known = registered_dense_heads()
    if name not in registry.DENSE_HEADS:
        raise KeyError(
            f"MODEL.DENSE_HEAD={name!r} is not a registered dense head; registered: {known} "
            "(a head of your own: list its module in CUSTOM_IMPORTS)"
        )
    head_class = registry.DENSE_HEADS[name]
    return head_class(**head_class.from_config(cfg, in_channels))
