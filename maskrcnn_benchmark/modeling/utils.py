"""Small tensor helpers shared by the modeling code."""
import torch


def cat(tensors, dim=0):
    """torch.cat that hands back a lone tensor as is instead of copying it."""
    if not isinstance(tensors, (list, tuple)):
        raise TypeError(f"cat expects a list or tuple of tensors, got {type(tensors).__name__}")
    if len(tensors) == 1:
        return tensors[0]
    return torch.cat(tensors, dim)


def registered(registry, name, key):
    """``registry[name]``, or a KeyError naming the config ``key``, the value and what is registered."""
    if name not in registry:
        raise KeyError(f"{key}: unknown {name!r}; registered: {sorted(map(str, registry))}")
    return registry[name]
