"""RoIAlign's CPU kernel reads the feature map either in place (planar) or from a channels-last
copy, whichever is cheaper for the call: a few RoIs on a large map go planar, many RoIs on a
small one channels-last. Its backward pass splits the channels into blocks, one per thread.
These tests cover both paths with what they add: input layouts other than contiguous
N x C x H x W, channel and pixel counts that fill neither the blocks nor the transpose tiles,
several threads, reduced-precision gradients; and the Pooler's uninitialised result buffer, whose
every row must still be written."""
import pytest
import torch
import torchvision

from maskrcnn_benchmark.layers import roi_align
from maskrcnn_benchmark.modeling.poolers import Pooler
from maskrcnn_benchmark.structures.bounding_box import BoxList


def rois_on(generator, count, batch_size, extent):
    xy = torch.rand(count, 2, generator=generator, dtype=torch.float64) * extent - 4
    wh = torch.rand(count, 2, generator=generator, dtype=torch.float64) * extent / 2
    batch = torch.randint(0, batch_size, (count, 1), generator=generator).double()
    return torch.cat([batch, xy, xy + wh], dim=1)


def layouts(features):
    """The same values as contiguous, channels-last, and a strided view of a larger tensor."""
    wider = torch.zeros(features.shape[0], features.shape[1] + 2, features.shape[2],
                        features.shape[3] * 2, dtype=features.dtype)
    wider[:, 1:-1, :, ::2] = features
    return {
        "contiguous": features,
        "channels_last": features.contiguous(memory_format=torch.channels_last),
        "strided_view": wider[:, 1:-1, :, ::2],
    }


# On the 2 x 13 x 19 map below, 5 x 4 bins of 2 x 2 samples: one RoI reads 320 corners, fewer
# than 1.5 x the 494 pixels (planar); 23 RoIs read 7360 (channels-last).
@pytest.mark.parametrize("num_rois", [1, 23])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided_view"])
def test_every_layout_matches_torchvision_forward_and_backward(layout, num_rois, two_threads):
    g = torch.Generator().manual_seed(11)
    # 37 channels (odd, not a multiple of a thread block) on a 13 x 19 map (not a multiple of
    # the 32 x 32 transpose tile).
    features = torch.randn(2, 37, 13, 19, generator=g, dtype=torch.float64)
    rois = rois_on(g, num_rois, 2, 40.0)
    grad = torch.randn(num_rois, 37, 5, 4, generator=g, dtype=torch.float64)

    ours_in = layouts(features)[layout].detach().requires_grad_()
    ours = roi_align(ours_in, rois, (5, 4), 0.5, 2, True)
    ours.backward(grad)
    reference_in = features.clone().requires_grad_()
    reference = torchvision.ops.roi_align(reference_in, rois, (5, 4), 0.5, 2, True)
    reference.backward(grad)

    torch.testing.assert_close(ours, reference, atol=1e-12, rtol=0)
    torch.testing.assert_close(ours_in.grad, reference_in.grad, atol=1e-12, rtol=0)
    assert ours_in.grad.shape == features.shape


@pytest.mark.parametrize("num_rois", [1, 60])  # planar, channels-last
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_gradient_does_not_depend_on_the_thread_count(threads, num_rois):
    g = torch.Generator().manual_seed(5)
    features = torch.randn(1, 70, 24, 24, generator=g)
    rois = rois_on(g, num_rois, 1, 96.0).float()
    grad = torch.randn(num_rois, 70, 7, 7, generator=g)
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        x = features.clone().requires_grad_()
        roi_align(x, rois, 7, 0.25, 0).backward(grad)
    finally:
        torch.set_num_threads(previous)
    reference = features.clone().requires_grad_()
    torchvision.ops.roi_align(reference, rois, 7, 0.25, 0).backward(grad)
    torch.testing.assert_close(x.grad, reference.grad, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("num_rois", [1, 30])  # planar, channels-last
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_reduced_precision_gradient_follows_float32(dtype, num_rois):
    g = torch.Generator().manual_seed(9)
    features = torch.randn(1, 20, 16, 16, generator=g)
    rois = rois_on(g, num_rois, 1, 64.0).float()
    grad = torch.randn(num_rois, 20, 3, 3, generator=g)

    full = features.clone().requires_grad_()
    roi_align(full, rois, 3, 0.5, 2).backward(grad)
    low = features.to(dtype).requires_grad_()
    roi_align(low, rois, 3, 0.5, 2).backward(grad.to(dtype))
    assert low.grad.dtype == dtype
    # Accumulated in float32, rounded once at the end: only the inputs' rounding shows.
    torch.testing.assert_close(low.grad.float(), full.grad, atol=0.05, rtol=0.02)


def test_pooler_writes_every_row_and_zeros_boxes_without_a_level(monkeypatch):
    # Uninitialised buffers come back NaN-filled, so a row the pooler forgot to write shows.
    real_new_empty = torch.Tensor.new_empty
    monkeypatch.setattr(torch.Tensor, "new_empty",
                        lambda self, *args, **kwargs: real_new_empty(self, *args, **kwargs).fill_(float("nan")))
    torch.manual_seed(0)
    scales = (0.25, 0.125)
    features = [torch.randn(1, 3, 32, 32), torch.randn(1, 3, 16, 16)]
    boxes = torch.tensor([[4.0, 4.0, 20.0, 20.0],      # small: level 0
                          [0.0, 0.0, 120.0, 110.0],    # large: level 1
                          [30.0, 30.0, 10.0, 50.0]])   # inverted: NaN size, no level
    pooled = Pooler((2, 2), scales, sampling_ratio=2)(features, [BoxList(boxes, (128, 128))])

    rois = torch.cat([torch.zeros(3, 1), boxes], dim=1)
    torch.testing.assert_close(pooled[0], torchvision.ops.roi_align(features[0], rois[:1], 2, 0.25, 2)[0])
    torch.testing.assert_close(pooled[1], torchvision.ops.roi_align(features[1], rois[1:2], 2, 0.125, 2)[0])
    assert torch.equal(pooled[2], torch.zeros(3, 2, 2))
