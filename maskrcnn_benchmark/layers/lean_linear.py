"""A fully connected layer whose backward frees its input before computing the input gradient.

``F.linear`` keeps its input until its whole backward has run, so while the input gradient is
being computed both K x D buffers (input and input gradient) are alive. The box head's fc6 has
D = 256 * 7 * 7 = 12544 inputs per RoI: with thousands of RoIs (every proposal is trained under
Sampling-Free) that pair is the largest allocation of a training step. Here the weight gradient
is computed first, the input is then released, and only after that the input gradient is
allocated: the same arithmetic with one K x D buffer fewer at the peak.
"""
import torch
from torch.autograd.function import once_differentiable
from torch.nn import functional as F


class _LinearReleasingInput(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, weight, bias):
        # Held as a plain attribute rather than saved: saved tensors live until backward returns.
        ctx.input = input
        ctx.save_for_backward(weight)
        ctx.has_bias = bias is not None
        return F.linear(input, weight, bias)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        (weight,) = ctx.saved_tensors
        input, ctx.input = ctx.input, None
        needs_input, needs_weight, needs_bias = ctx.needs_input_grad
        grad_weight = grad_output.t().mm(input) if needs_weight else None
        grad_bias = grad_output.sum(0) if ctx.has_bias and needs_bias else None
        del input  # the last reference once the forward's caller has let go of it
        grad_input = grad_output.mm(weight) if needs_input else None
        return grad_input, grad_weight, grad_bias


def lean_linear(input, weight, bias=None):
    """``F.linear(input, weight, bias)`` for 2-D ``input`` with a backward that needs one input-sized
    buffer fewer at its peak. Under autocast, or for other input ranks, it is plain ``F.linear``."""
    if input.dim() != 2 or torch.is_autocast_enabled(input.device.type) or not torch.is_grad_enabled():
        return F.linear(input, weight, bias)
    return _LinearReleasingInput.apply(input, weight, bias)
