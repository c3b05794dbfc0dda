"""Layers that accept empty (zero-sized) batches, e.g. a mask head given no RoIs.

PyTorch 2.x convolutions, batch norm and interpolation handle a batch of 0 natively, output
shape and autograd included (tests/layers/test_ops_layers.py checks this), so these are the stock
modules under maskrcnn-benchmark's names. They only add a clear error for inputs that are not
batched 4-D maps.
"""
import torch
import torch.nn.functional as F


def _check_4d(layer, x):
    if x.dim() != 4:
        raise ValueError(f"{layer}: expected an N x C x H x W input, got shape {tuple(x.shape)}")


class Conv2d(torch.nn.Conv2d):
    def forward(self, x):
        _check_4d("Conv2d", x)
        return super().forward(x)


class ConvTranspose2d(torch.nn.ConvTranspose2d):
    def forward(self, x):
        _check_4d("ConvTranspose2d", x)
        return super().forward(x)


class BatchNorm2d(torch.nn.BatchNorm2d):
    def forward(self, x):
        _check_4d("BatchNorm2d", x)
        return super().forward(x)


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    return F.interpolate(input, size=size, scale_factor=scale_factor, mode=mode,
                         align_corners=align_corners)
