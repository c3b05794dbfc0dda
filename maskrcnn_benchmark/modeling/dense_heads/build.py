"""build_dense_head(cfg, in_channels): the registered dense head a config names.

The heads this package ships register themselves when their module is imported; their modules are
listed in BUILTIN_DENSE_HEADS and imported on first use (the heads import this kit, so the kit
cannot import them at load time). A head of your own registers the same way from your module,
which the yaml's CUSTOM_IMPORTS imports before the model is built.
"""
import importlib

from maskrcnn_benchmark.modeling import registry
from maskrcnn_benchmark.modeling.architecture import dense_head_name
from maskrcnn_benchmark.modeling.utils import registered

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


def dense_head_class(cfg):
    """The registered class of the dense head ``cfg`` names (MODEL.DENSE_HEAD or a MODEL.<NAME>_ON
    switch); its ``config_group`` is the MODEL group it reads (NUM_CLASSES, ...)."""
    registered_dense_heads()
    return registered(registry.DENSE_HEADS, dense_head_name(cfg), "MODEL.DENSE_HEAD (yours: see CUSTOM_IMPORTS)")


def build_dense_head(cfg, in_channels):
    """The dense head of ``cfg`` on ``in_channels``-wide features, built from the arguments its
    ``from_config(cfg, in_channels)`` reads."""
    head_class = dense_head_class(cfg)
    return head_class(**head_class.from_config(cfg, in_channels))
