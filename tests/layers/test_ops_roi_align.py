"""RoIAlign against torchvision.ops.roi_align: forward values, gradients, edge cases."""
import pytest
import torch
import torchvision
from helpers import assert_pooling_backward_matches, random_rois

from maskrcnn_benchmark.layers import ROIAlign, roi_align


EDGE_ROIS = [
    [0, 5.0, 5.0, 5.0, 5.0],        # a point
    [1, 3.0, 4.0, 3.0, 20.0],       # zero width
    [0, 12.0, 12.0, 4.0, 4.0],      # inverted corners
    [1, 200.0, 200.0, 260.0, 240.0],  # entirely off the image
    [0, -40.0, -30.0, -10.0, -5.0],   # entirely before the image
    [1, -3.0, -3.0, 70.0, 70.0],      # covers and exceeds the image
    [0, 0.0, 0.0, 63.0, 47.0],        # the whole image
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [0, 1, 2, 4])
def test_forward_matches_torchvision(dtype, aligned, sampling_ratio):
    g = torch.Generator().manual_seed(sampling_ratio * 10 + int(aligned))
    features = torch.randn(2, 3, 24, 32, generator=g, dtype=dtype)
    rois = torch.cat([random_rois(g, 30, 2, 64.0, dtype), torch.tensor(EDGE_ROIS, dtype=dtype)])
    for scale, size in [(0.5, (7, 7)), (0.25, (5, 3)), (1.0, (2, 4))]:
        ours = roi_align(features, rois, size, scale, sampling_ratio, aligned)
        reference = torchvision.ops.roi_align(features, rois, size, scale, sampling_ratio, aligned)
        assert ours.shape == (rois.shape[0], 3) + size
        torch.testing.assert_close(ours, reference, atol=1e-5, rtol=0)


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [0, 2])
def test_backward_matches_torchvision(aligned, sampling_ratio):
    assert_pooling_backward_matches(
        lambda x, rois: roi_align(x, rois, 7, 0.5, sampling_ratio, aligned),
        lambda x, rois: torchvision.ops.roi_align(x, rois, 7, 0.5, sampling_ratio, aligned),
        EDGE_ROIS, output_size=7, seed=7)


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [0, 2])
def test_gradcheck(aligned, sampling_ratio):
    g = torch.Generator().manual_seed(3)
    features = torch.randn(2, 2, 9, 11, generator=g, dtype=torch.float64, requires_grad=True)
    rois = torch.tensor([[0, 1.3, 2.2, 14.9, 12.1], [1, -2.0, 3.5, 8.0, 25.0],
                         [1, 4.0, 4.0, 4.0, 4.0]], dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda x: roi_align(x, rois, (3, 4), 0.7, sampling_ratio, aligned), (features,))


def test_no_rois_gives_empty_output_and_zero_gradient():
    features = torch.randn(2, 3, 8, 8, requires_grad=True)
    out = roi_align(features, torch.zeros(0, 5), (7, 7), 0.25, 2)
    assert out.shape == (0, 3, 7, 7)
    out.sum().backward()
    assert torch.equal(features.grad, torch.zeros_like(features))


def test_module_matches_function_and_repr():
    layer = ROIAlign((7, 7), spatial_scale=0.25, sampling_ratio=2, aligned=True)
    features = torch.randn(1, 2, 16, 16)
    rois = torch.tensor([[0, 4.0, 4.0, 40.0, 30.0]])
    torch.testing.assert_close(layer(features, rois), roi_align(features, rois, 7, 0.25, 2, True))
    assert "aligned=True" in repr(layer)


def test_mixed_dtypes_pool_in_float32_and_return_input_dtype():
    features = torch.randn(1, 2, 16, 16, dtype=torch.float64)
    rois = torch.tensor([[0, 1.0, 2.0, 12.0, 10.0]])
    out = roi_align(features, rois, 4, 1.0, 2)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, roi_align(features.float(), rois, 4, 1.0, 2).double())


def test_bad_arguments_name_the_culprit():
    features = torch.randn(1, 2, 8, 8)
    with pytest.raises(ValueError, match="rois must be K x 5"):
        roi_align(features, torch.zeros(3, 4), 7, 1.0, 2)
    with pytest.raises(ValueError, match="output_size"):
        roi_align(features, torch.zeros(1, 5), (0, 7), 1.0, 2)
    with pytest.raises(ValueError, match="sampling_ratio"):
        roi_align(features, torch.zeros(1, 5), 7, 1.0, -1)
    with pytest.raises(RuntimeError, match="batch index 3"):
        roi_align(features, torch.tensor([[3, 0.0, 0.0, 4.0, 4.0]]), 7, 1.0, 2)


def test_torch_compile_traces_through_roi_align():
    rois = torch.tensor([[0, 1.0, 2.0, 12.0, 10.0], [0, 3.0, 3.0, 7.0, 9.0]])

    def pooled_energy(features):
        return roi_align(features * 2, rois, (3, 3), 0.5, 2, True).square().sum()

    # aot_eager traces with fake tensors and the registered autograd formula, without
    # generating C++ code, so the test stays fast.
    compiled = torch.compile(pooled_energy, backend="aot_eager", fullgraph=False)
    features = torch.randn(1, 2, 10, 10, requires_grad=True)
    value = compiled(features)
    (grad,) = torch.autograd.grad(value, features)
    expected_in = features.detach().clone().requires_grad_()
    expected = pooled_energy(expected_in)
    expected.backward()
    torch.testing.assert_close(value, expected)
    torch.testing.assert_close(grad, expected_in.grad)


def test_torch_compile_inductor_runs_roi_align_on_cpu():
    # The default backend generates and compiles C++ for the surrounding ops (~20 s cold).
    rois = torch.tensor([[0, 1.0, 2.0, 12.0, 10.0], [0, 3.0, 3.0, 7.0, 9.0]])

    def pooled_energy(features):
        return roi_align(features * 2, rois, (3, 3), 0.5, 0, False).square().sum()

    compiled = torch.compile(pooled_energy, fullgraph=False)
    features = torch.randn(1, 2, 10, 10, requires_grad=True)
    value = compiled(features)
    (grad,) = torch.autograd.grad(value, features)
    expected_in = features.detach().clone().requires_grad_()
    pooled_energy(expected_in).backward()
    torch.testing.assert_close(value, pooled_energy(features.detach()))
    torch.testing.assert_close(grad, expected_in.grad)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_reduced_precision_follows_float32(dtype):
    g = torch.Generator().manual_seed(2)
    features = torch.randn(2, 3, 16, 16, generator=g)
    rois = random_rois(g, 20, 2, 32.0, torch.float32)
    reference = roi_align(features, rois, 5, 0.5, 2, True)
    low = roi_align(features.to(dtype), rois.to(dtype), 5, 0.5, 2, True)
    assert low.dtype == dtype
    # Box corners are rounded to the low-precision grid too, hence the loose tolerance.
    torch.testing.assert_close(low.float(), reference, atol=0.1, rtol=0.05)
    # Under autocast-style mixing (low-precision features, float32 boxes) only the features
    # are rounded.
    mixed = roi_align(features.to(dtype), rois, 5, 0.5, 2, True)
    assert mixed.dtype == dtype
    torch.testing.assert_close(mixed.float(), reference, atol=0.02, rtol=0.02)


# ------------------------------------------- row-selected forward / backward (multi-level pooler)
def _rois_on_map(count, size, generator):
    xy = torch.rand(count, 2, generator=generator) * size * 0.7
    wh = 1 + torch.rand(count, 2, generator=generator) * size * 0.5
    image = torch.randint(0, 2, (count, 1), generator=generator).float()
    return torch.cat([image, xy, xy + wh], dim=1)


@pytest.mark.parametrize("map_size", [12, 96])  # small map: channels-last path; large, sparse: planar
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_roi_align_into_writes_only_the_selected_rows(map_size, dtype):
    from maskrcnn_benchmark.layers.roi_align import roi_align_into

    generator = torch.Generator().manual_seed(3)
    features = torch.randn(2, 5, map_size, map_size, generator=generator, dtype=dtype)
    rois = _rois_on_map(9, map_size * 4, generator).to(dtype)
    rows = torch.tensor([7, 0, 4, 2])
    output = torch.full((9, 5, 3, 3), 42.0, dtype=dtype)
    roi_align_into(output, features, rois, rows, (3, 3), 0.25, 2, aligned=True)
    expected = torchvision.ops.roi_align(features, rois[rows], (3, 3), 0.25, 2, aligned=True)
    torch.testing.assert_close(output[rows], expected)
    untouched = torch.ones(9, dtype=torch.bool)
    untouched[rows] = False
    assert torch.all(output[untouched] == 42.0)


@pytest.mark.parametrize("map_size", [12, 96])
def test_backward_of_selected_rows_equals_torchvision_on_those_rows(map_size):
    from maskrcnn_benchmark.layers.roi_align import roi_align_backward

    generator = torch.Generator().manual_seed(4)
    features = torch.randn(2, 5, map_size, map_size, generator=generator, dtype=torch.float64)
    rois = _rois_on_map(9, map_size * 4, generator).double()
    rows = torch.tensor([8, 1, 5])
    grad_output = torch.randn(9, 5, 3, 3, generator=generator, dtype=torch.float64)
    ours = roi_align_backward(grad_output, rois, 0.25, (3, 3), 0, False, tuple(features.shape), rows=rows)

    reference_input = features.clone().requires_grad_()
    pooled = torchvision.ops.roi_align(reference_input, rois[rows], (3, 3), 0.25, 0, aligned=False)
    pooled.backward(grad_output[rows])
    torch.testing.assert_close(ours, reference_input.grad)


def test_row_selection_errors_name_the_culprit():
    from maskrcnn_benchmark.layers.roi_align import roi_align_backward, roi_align_into

    features = torch.randn(1, 2, 8, 8)
    rois = torch.tensor([[0.0, 1, 1, 6, 6], [0.0, 2, 2, 5, 7]])
    output = torch.zeros(2, 2, 2, 2)
    with pytest.raises(RuntimeError, match="rows hold indices 0..2 but there are 2 RoIs"):
        roi_align_into(output, features, rois, torch.tensor([0, 2]), (2, 2), 1.0, 2)
    with pytest.raises(RuntimeError, match="rows must be a 1-D int64"):
        roi_align_into(output, features, rois, torch.tensor([0.0]), (2, 2), 1.0, 2)
    with pytest.raises(RuntimeError, match="output has shape"):
        roi_align_into(torch.zeros(3, 2, 2, 2), features, rois, torch.tensor([0]), (2, 2), 1.0, 2)
    with pytest.raises(RuntimeError, match="rows hold indices"):
        roi_align_backward(torch.zeros(2, 2, 2, 2), rois, 1.0, (2, 2), 2, False, (1, 2, 8, 8),
                           rows=torch.tensor([-1]))
