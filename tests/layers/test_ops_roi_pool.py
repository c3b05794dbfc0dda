"""RoIPool against torchvision.ops.roi_pool: forward values, gradients, edge cases."""
import pytest
import torch
import torchvision
from helpers import assert_pooling_backward_matches, random_rois

from maskrcnn_benchmark.layers import ROIPool, roi_pool

EDGE_ROIS = [
    [0, 5.0, 5.0, 5.0, 5.0],          # a point
    [1, 12.0, 12.0, 4.0, 4.0],        # inverted corners
    [1, 200.0, 200.0, 260.0, 240.0],  # entirely off the image
    [0, -40.0, -30.0, -10.0, -5.0],   # entirely before the image
    [1, -3.0, -3.0, 70.0, 70.0],      # covers and exceeds the image
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("scale,size", [(0.5, (7, 7)), (0.25, (3, 5)), (1.0, (2, 2))])
def test_forward_matches_torchvision(dtype, scale, size):
    g = torch.Generator().manual_seed(11)
    features = torch.randn(2, 3, 24, 32, generator=g, dtype=dtype)
    rois = torch.cat([random_rois(g, 30, 2, 64.0, dtype), torch.tensor(EDGE_ROIS, dtype=dtype)])
    ours = roi_pool(features, rois, size, scale)
    reference = torchvision.ops.roi_pool(features, rois, size, scale)
    assert ours.shape == (rois.shape[0], 3) + size
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=0)


def test_backward_matches_torchvision():
    assert_pooling_backward_matches(lambda x, rois: roi_pool(x, rois, 5, 0.5),
                                    lambda x, rois: torchvision.ops.roi_pool(x, rois, 5, 0.5),
                                    EDGE_ROIS, output_size=5, seed=5)


def test_gradcheck():
    # Distinct values keep each bin's maximum unique, so the function is differentiable.
    features = (torch.randperm(2 * 2 * 9 * 11, generator=torch.Generator().manual_seed(0))
                .reshape(2, 2, 9, 11).double() / 10).requires_grad_()
    rois = torch.tensor([[0, 1.3, 2.2, 14.9, 12.1], [1, -2.0, 3.5, 8.0, 25.0],
                         [1, 4.0, 4.0, 4.0, 4.0]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: roi_pool(x, rois, (3, 4), 0.7), (features,))


def test_hand_computed_maximum():
    features = torch.arange(16.0).reshape(1, 1, 4, 4)
    # The whole map in 2 x 2 bins: each bin's maximum is its bottom-right cell.
    out = roi_pool(features, torch.tensor([[0, 0.0, 0.0, 3.0, 3.0]]), 2, 1.0)
    assert out.flatten().tolist() == [5.0, 7.0, 13.0, 15.0]


def test_no_rois_and_module():
    features = torch.randn(2, 3, 8, 8, requires_grad=True)
    layer = ROIPool((7, 7), 0.25)
    out = layer(features, torch.zeros(0, 5))
    assert out.shape == (0, 3, 7, 7)
    out.sum().backward()
    assert torch.equal(features.grad, torch.zeros_like(features))
    assert "spatial_scale=0.25" in repr(layer)


def test_bad_arguments_name_the_culprit():
    with pytest.raises(ValueError, match="input must be N x C x H x W"):
        roi_pool(torch.randn(2, 8, 8), torch.zeros(1, 5), 7, 1.0)
    with pytest.raises(RuntimeError, match="batch index -1"):
        roi_pool(torch.randn(1, 1, 8, 8), torch.tensor([[-1, 0.0, 0.0, 4.0, 4.0]]), 2, 1.0)
