"""Builders for the small conv / fc / GroupNorm blocks that heads and FPN share.

GroupNorm settings come from ``config.MODEL.GROUP_NORM``, so a call site only says whether it wants
GN, not how many groups. ``config`` defaults to the global ``cfg`` (maskrcnn-benchmark's behaviour);
code that builds from a cloned config should pass it.
"""
from torch import nn

from maskrcnn_benchmark.config import cfg
from maskrcnn_benchmark.layers import Conv2d


def get_group_gn(dim, dim_per_gp, num_groups):
    """Number of GroupNorm groups for ``dim`` channels; exactly one of the two settings may be given."""
    if (dim_per_gp > 0) == (num_groups > 0):
        raise ValueError(
            "MODEL.GROUP_NORM: set exactly one of DIM_PER_GP and NUM_GROUPS (the other to -1), "
            f"got DIM_PER_GP={dim_per_gp}, NUM_GROUPS={num_groups}"
        )
    if dim_per_gp > 0:
        if dim % dim_per_gp != 0:
            raise ValueError(f"MODEL.GROUP_NORM.DIM_PER_GP={dim_per_gp} does not divide {dim} channels")
        return dim // dim_per_gp
    if dim % num_groups != 0:
        raise ValueError(f"MODEL.GROUP_NORM.NUM_GROUPS={num_groups} does not divide {dim} channels")
    return num_groups


def group_norm(out_channels, affine=True, divisor=1, config=None):
    """GroupNorm over ``out_channels``; ``divisor`` shrinks the group settings for narrow layers."""
    settings = (config or cfg).MODEL.GROUP_NORM
    dim_per_gp = settings.DIM_PER_GP // divisor
    num_groups = settings.NUM_GROUPS // divisor
    eps = settings.EPSILON
    return nn.GroupNorm(get_group_gn(out_channels, dim_per_gp, num_groups), out_channels, eps, affine)


def _stack(modules):
    return modules[0] if len(modules) == 1 else nn.Sequential(*modules)


def make_conv3x3(
    in_channels, out_channels, dilation=1, stride=1, use_gn=False, use_relu=False, kaiming_init=True, config=None
):
    """3x3 conv (+ GN) (+ ReLU); the conv has a bias only when no norm follows it."""
    conv = Conv2d(
        in_channels, out_channels, kernel_size=3, stride=stride, padding=dilation, dilation=dilation, bias=not use_gn
    )
    if kaiming_init:
        nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    else:
        nn.init.normal_(conv.weight, std=0.01)
    if conv.bias is not None:
        nn.init.constant_(conv.bias, 0)
    modules = [conv]
    if use_gn:
        modules.append(group_norm(out_channels, config=config))
    if use_relu:
        modules.append(nn.ReLU(inplace=True))
    return _stack(modules)


def make_fc(dim_in, hidden_dim, use_gn=False, config=None):
    """Linear layer (+ GN); kaiming-uniform weights with a=1, zero bias."""
    fc = nn.Linear(dim_in, hidden_dim, bias=not use_gn)
    nn.init.kaiming_uniform_(fc.weight, a=1)
    if not use_gn:
        nn.init.constant_(fc.bias, 0)
        return fc
    return nn.Sequential(fc, group_norm(hidden_dim, config=config))


def conv_with_kaiming_uniform(use_gn=False, use_relu=False, config=None):
    """A ``make_conv(in_channels, out_channels, kernel_size, stride=1, dilation=1)`` factory (used by FPN)."""

    def make_conv(in_channels, out_channels, kernel_size, stride=1, dilation=1):
        conv = Conv2d(
            in_channels,
            out_channels,
            kernel_size=kernel_size,
            stride=stride,
            padding=dilation * (kernel_size - 1) // 2,
            dilation=dilation,
            bias=not use_gn,
        )
        nn.init.kaiming_uniform_(conv.weight, a=1)
        if conv.bias is not None:
            nn.init.constant_(conv.bias, 0)
        modules = [conv]
        if use_gn:
            modules.append(group_norm(out_channels, config=config))
        if use_relu:
            modules.append(nn.ReLU(inplace=True))
        return _stack(modules)

    return make_conv
