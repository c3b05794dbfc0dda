"""lean_linear: F.linear's values and gradients, with the input released before the input
gradient is allocated (the box head's fc6 on thousands of RoIs)."""
import pytest
import torch
from torch.nn import functional as F

from maskrcnn_benchmark.layers.lean_linear import lean_linear


@pytest.mark.parametrize("with_bias", [True, False])
def test_values_and_gradients_equal_f_linear(with_bias):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(7, 11, generator=generator, dtype=torch.float64)
    weight = torch.randn(5, 11, generator=generator, dtype=torch.float64)
    bias = torch.randn(5, generator=generator, dtype=torch.float64) if with_bias else None
    grad = torch.randn(7, 5, generator=generator, dtype=torch.float64)

    ours = [t.clone().requires_grad_() if t is not None else None for t in (x, weight, bias)]
    reference = [t.clone().requires_grad_() if t is not None else None for t in (x, weight, bias)]
    out = lean_linear(*ours)
    expected = F.linear(*reference)
    torch.testing.assert_close(out, expected)
    out.backward(grad)
    expected.backward(grad)
    for mine, theirs in zip(ours, reference):
        if mine is not None:
            torch.testing.assert_close(mine.grad, theirs.grad)


def test_only_the_requested_gradients_are_computed():
    x = torch.randn(4, 3)  # no gradient wanted for the input (a frozen feature)
    weight = torch.randn(2, 3, requires_grad=True)
    lean_linear(x, weight, None).sum().backward()
    torch.testing.assert_close(weight.grad, torch.ones(4, 2).t().mm(x))


def test_backward_peak_holds_one_input_sized_buffer_fewer():
    from torch.profiler import ProfilerActivity, profile

    def backward_peak(linear):
        row = torch.randn(1, 3000, requires_grad=True)
        weight = torch.randn(64, 3000, requires_grad=True)
        # The input is an intermediate (as the pooled RoI features are), not kept by the caller,
        # made by an op whose backward needs little memory (so the linear's node is the peak).
        # Forward inside the profiled window too: frees of blocks allocated before it are not seen.
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            linear(row.repeat(2000, 1), weight, None).sum().backward()
        current = peak = 0
        events = prof.profiler.kineto_results.events()
        for _, delta in sorted((e.start_ns(), e.nbytes()) for e in events if e.name() == "[memory]"):
            current += delta
            peak = max(peak, current)
        return peak

    input_bytes = 2000 * 3000 * 4
    saved = backward_peak(F.linear) - backward_peak(lean_linear)
    # F.linear's backward allocates the input gradient while the saved input is still held;
    # lean_linear frees the input first, so its peak is one input-sized buffer lower.
    assert saved > 0.9 * input_bytes, (saved, input_bytes)


def test_autocast_and_no_grad_fall_back_to_f_linear():
    x = torch.randn(3, 4)
    weight = torch.randn(2, 4)
    with torch.no_grad():
        torch.testing.assert_close(lean_linear(x, weight), F.linear(x, weight))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = lean_linear(x, weight)
    assert out.dtype == torch.bfloat16
