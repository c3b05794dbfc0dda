"""Deformable convolution (DCN v1) and its modulated form (DCN v2) on top of torchvision.ops.deform_conv2d.

``DFConv2d`` is the drop-in block used by ResNet stages and detection towers: it predicts its own
sampling offsets (and, for the modulated form, per-tap masks) with a plain conv whose weights start
at zero, so a freshly built DFConv2d samples the regular grid. Parameter names (``offset.*``,
``conv.weight``) follow maskrcnn-benchmark so that its DCN checkpoints load.
"""
import math

import torch
from torch import nn
from torchvision.ops import deform_conv2d


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


class DeformConv(nn.Module):
    """Convolution whose k x k taps are displaced by an ``offset`` tensor given at call time."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 deformable_groups=1, bias=False):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"groups={groups} must divide in_channels={in_channels} and out_channels={out_channels}")
        if in_channels % deformable_groups:
            raise ValueError(f"deformable_groups={deformable_groups} must divide in_channels={in_channels}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride)
        self.padding = _pair(padding)
        self.dilation = _pair(dilation)
        self.groups = groups
        self.deformable_groups = deformable_groups
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, *self.kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def forward(self, x, offset, mask=None):
        return deform_conv2d(x, offset, self.weight, self.bias, stride=self.stride, padding=self.padding,
                             dilation=self.dilation, mask=mask)

    def extra_repr(self):
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, dilation={self.dilation}, groups={self.groups}, "
            f"deformable_groups={self.deformable_groups}, bias={self.bias is not None}"
        )


class ModulatedDeformConv(DeformConv):
    """DCN v2: every displaced tap is also scaled by a mask in [0, 1]."""

    def forward(self, x, offset, mask):
        return super().forward(x, offset, mask)


class DFConv2d(nn.Module):
    """Deformable conv that learns its own offsets (and masks when ``with_modulated_dcn``)."""

    def __init__(self, in_channels, out_channels, with_modulated_dcn=True, kernel_size=3, stride=1, groups=1,
                 dilation=1, deformable_groups=1, bias=False):
        super().__init__()
        kernel_h, kernel_w = _pair(kernel_size)
        padding = (dilation * (kernel_h - 1) // 2, dilation * (kernel_w - 1) // 2)
        taps = deformable_groups * kernel_h * kernel_w
        self.with_modulated_dcn = with_modulated_dcn
        self.offset_channels = 2 * taps
        # x/y displacement per tap, plus one mask logit per tap in the modulated form.
        self.offset = nn.Conv2d(in_channels, 3 * taps if with_modulated_dcn else 2 * taps,
                                kernel_size=(kernel_h, kernel_w), stride=stride, padding=padding, dilation=dilation)
        nn.init.zeros_(self.offset.weight)
        nn.init.zeros_(self.offset.bias)
        conv_type = ModulatedDeformConv if with_modulated_dcn else DeformConv
        self.conv = conv_type(in_channels, out_channels, kernel_size=(kernel_h, kernel_w), stride=stride,
                              padding=padding, dilation=dilation, groups=groups,
                              deformable_groups=deformable_groups, bias=bias)
        self.out_channels = out_channels

    def forward(self, x):
        offset_and_mask = self.offset(x)
        if not self.with_modulated_dcn:
            return self.conv(x, offset_and_mask)
        offset = offset_and_mask[:, : self.offset_channels]
        mask = offset_and_mask[:, self.offset_channels :].sigmoid()
        return self.conv(x, offset, mask)
