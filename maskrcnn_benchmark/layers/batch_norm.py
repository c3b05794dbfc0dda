"""Batch normalisation with frozen statistics and affine parameters (for fine-tuned backbones)."""
import torch
from torch import nn


class FrozenBatchNorm2d(nn.Module):
    """y = (x - running_mean) / sqrt(running_var + eps) * weight + bias, all four fixed buffers.

    ``eps`` defaults to 0 as in maskrcnn-benchmark, whose converted Caffe2 weights already fold it
    into ``running_var``. State dicts of a regular BatchNorm2d load directly: their
    ``num_batches_tracked`` entry is accepted and ignored.
    """

    def __init__(self, n, eps=0.0):
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(n))
        self.register_buffer("bias", torch.zeros(n))
        self.register_buffer("running_mean", torch.zeros(n))
        self.register_buffer("running_var", torch.ones(n))

    def forward(self, x):
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        # Folded into one multiply-add; the buffers follow the input dtype (e.g. under autocast).
        return x * scale.view(1, -1, 1, 1).to(x.dtype) + shift.view(1, -1, 1, 1).to(x.dtype)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        state_dict.pop(prefix + "num_batches_tracked", None)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def extra_repr(self):
        return f"{self.weight.shape[0]}, eps={self.eps}"
