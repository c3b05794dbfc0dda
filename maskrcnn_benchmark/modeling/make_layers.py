"""Builders for the small conv / fc / GroupNorm blocks that heads and FPN share.

GroupNorm settings are an explicit argument: ``gn=GroupNormSettings.from_config(cfg)`` at the
config boundary (``config=cfg`` is accepted as a shorthand for exactly that). Without either,
maskrcnn-benchmark's default settings apply (32 groups, eps 1e-5). Nothing here reads the global
config: a head built from a config that asks for 16 groups gets 16.
"""
from dataclasses import dataclass

from torch import nn

from maskrcnn_benchmark.layers import Conv2d


@dataclass(frozen=True)
class GroupNormSettings:
    """MODEL.GROUP_NORM: exactly one of ``dim_per_gp`` / ``num_groups`` is positive."""

    dim_per_gp: int = -1
    num_groups: int = 32
    epsilon: float = 1e-5

    @classmethod
    def from_config(cls, cfg):
        settings = cfg.MODEL.GROUP_NORM
        return cls(settings.DIM_PER_GP, settings.NUM_GROUPS, settings.EPSILON)


def _settings(gn, config):
    if gn is not None:
        return gn
    return GroupNormSettings.from_config(config) if config is not None else GroupNormSettings()


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


def group_norm(out_channels, affine=True, divisor=1, gn=None, config=None):
    """GroupNorm over ``out_channels``; ``divisor`` shrinks the group settings for narrow layers."""
    settings = _settings(gn, config)
    groups = get_group_gn(out_channels, settings.dim_per_gp // divisor, settings.num_groups // divisor)
    return nn.GroupNorm(groups, out_channels, settings.epsilon, affine)


def _conv_block(conv, use_gn, use_relu, gn, config):
    """``conv`` (+ GN) (+ ReLU): the conv alone when nothing follows it."""
    modules = [conv]
    if use_gn:
        modules.append(group_norm(conv.out_channels, gn=gn, config=config))
    if use_relu:
        modules.append(nn.ReLU(inplace=True))
    return modules[0] if len(modules) == 1 else nn.Sequential(*modules)


def make_conv3x3(
    in_channels, out_channels, dilation=1, stride=1, use_gn=False, use_relu=False, kaiming_init=True,
    gn=None, config=None,
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
    return _conv_block(conv, use_gn, use_relu, gn, config)


def make_fc(dim_in, hidden_dim, use_gn=False, gn=None, config=None):
    """Linear layer (+ GN); kaiming-uniform weights with a=1, zero bias."""
    fc = nn.Linear(dim_in, hidden_dim, bias=not use_gn)
    nn.init.kaiming_uniform_(fc.weight, a=1)
    if not use_gn:
        nn.init.constant_(fc.bias, 0)
        return fc
    return nn.Sequential(fc, group_norm(hidden_dim, gn=gn, config=config))


def conv_with_kaiming_uniform(use_gn=False, use_relu=False, gn=None, config=None):
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
        return _conv_block(conv, use_gn, use_relu, gn, config)

    return make_conv
