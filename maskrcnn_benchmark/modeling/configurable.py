"""``@configurable``: modules built from explicit arguments that still accept a config.

A class's ``__init__`` takes exactly the arguments the module needs; its classmethod
``from_config(cls, cfg, *args, **kwargs)`` reads them from a config and returns them as a dict.
Decorating ``__init__`` with ``configurable`` lets a caller use either form:

    RetinaNetHead(in_channels=256, num_classes=80, num_anchors=9, num_convs=4, prior_prob=0.01)
    RetinaNetHead(cfg, 256)        # maskrcnn-benchmark's signature: from_config(cfg, 256)

so the config is read once, at the boundary, and the module never keeps it.
"""
import functools

from yacs.config import CfgNode


def configurable(init):
    """Route ``Class(cfg, ...)`` through ``Class.from_config(cfg, ...)`` (the class being built)."""

    @functools.wraps(init)
    def wrapped(self, *args, **kwargs):
        if args and isinstance(args[0], CfgNode):
            return init(self, **type(self).from_config(*args, **kwargs))
        return init(self, *args, **kwargs)

    return wrapped
