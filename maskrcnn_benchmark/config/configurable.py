"""Modules built from explicit arguments, with the config read only at the boundary.

A module's ``__init__`` takes the values it needs (layer sizes, thresholds, sub-modules); its
``from_config(cls, cfg, ...)`` classmethod turns a config into those values. ``@configurable`` on
``__init__`` lets callers use either form::

    head = RPNHead(in_channels=256, num_anchors=3)   # explicit
    head = RPNHead(cfg, 256, 3)                      # maskrcnn-benchmark's form: from_config first

so the public constructors of maskrcnn-benchmark keep working while no module keeps the config.
"""
import functools

from yacs.config import CfgNode


def configurable(init):
    """Decorate an ``__init__`` whose class defines ``from_config(cls, cfg, *args, **kwargs) -> dict``
    (the keyword arguments of ``__init__``). A call whose first argument is a config goes through it."""

    @functools.wraps(init)
    def wrapped(self, *args, **kwargs):
        if args and isinstance(args[0], CfgNode):
            # The from_config of the class that owns this __init__, not of a subclass that calls it.
            owner = next(k for k in type(self).__mro__ if k.__dict__.get("__init__") is wrapped)
            init(self, **owner.from_config(*args, **kwargs))
        else:
            init(self, *args, **kwargs)

    return wrapped
