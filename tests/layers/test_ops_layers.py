"""Small layers: smooth L1, FrozenBatchNorm2d, empty-batch-safe Conv2d / BatchNorm2d / interpolate."""
import pytest
import torch
import torch.nn.functional as F

from maskrcnn_benchmark.layers import (BatchNorm2d, Conv2d, ConvTranspose2d, FrozenBatchNorm2d,
                                       interpolate, smooth_l1_loss)


def test_smooth_l1_hand_computed_and_against_torch():
    input = torch.tensor([0.0, 0.05, 1.0, -2.0])
    target = torch.zeros(4)
    beta = 0.1
    # |d| < beta: 0.5 d^2 / beta; else |d| - beta / 2
    expected = torch.tensor([0.0, 0.5 * 0.0025 / 0.1, 1.0 - 0.05, 2.0 - 0.05])
    torch.testing.assert_close(smooth_l1_loss(input, target, beta, size_average=False),
                               expected.sum())
    torch.testing.assert_close(smooth_l1_loss(input, target, beta), expected.mean())
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(50, 4, generator=g), torch.randn(50, 4, generator=g)
    torch.testing.assert_close(smooth_l1_loss(a, b, 1.0 / 9, size_average=False),
                               F.smooth_l1_loss(a, b, beta=1.0 / 9, reduction="sum"))
    torch.testing.assert_close(smooth_l1_loss(a, b, 0.0), (a - b).abs().mean())
    with pytest.raises(ValueError, match="beta"):
        smooth_l1_loss(a, b, -1.0)


def test_frozen_batch_norm_matches_eval_batch_norm_and_loads_bn_state():
    g = torch.Generator().manual_seed(0)
    # a positive eps on both sides: torch 2.11's batch_norm refuses eps=0 (the default is checked below)
    bn = torch.nn.BatchNorm2d(4, eps=1e-3)
    with torch.no_grad():
        bn.weight.copy_(torch.randn(4, generator=g))
        bn.bias.copy_(torch.randn(4, generator=g))
        bn.running_mean.copy_(torch.randn(4, generator=g))
        bn.running_var.copy_(torch.rand(4, generator=g) + 0.5)
    bn.eval()
    frozen = FrozenBatchNorm2d(4, eps=1e-3)
    frozen.load_state_dict(bn.state_dict())  # carries num_batches_tracked
    x = torch.randn(2, 4, 5, 5, generator=g)
    torch.testing.assert_close(frozen(x), bn(x))
    assert set(dict(frozen.named_buffers())) == {"weight", "bias", "running_mean", "running_var"}
    assert list(frozen.parameters()) == []

    # maskrcnn-benchmark's default eps is 0 (its converted weights fold eps into running_var)
    without_counter = {k: v for k, v in bn.state_dict().items() if k != "num_batches_tracked"}
    fresh = FrozenBatchNorm2d(4)
    fresh.load_state_dict(without_counter)
    column = lambda t: t.view(1, -1, 1, 1)  # noqa: E731
    by_hand = (x - column(bn.running_mean)) / column(bn.running_var).sqrt() * column(bn.weight) + column(bn.bias)
    torch.testing.assert_close(fresh(x), by_hand)


@pytest.mark.parametrize("layer,out_shape", [
    (Conv2d(3, 5, 3, padding=1, stride=2), (0, 5, 4, 4)),
    (ConvTranspose2d(3, 5, 2, stride=2), (0, 5, 16, 16)),
    (BatchNorm2d(3), (0, 3, 8, 8)),
])
def test_empty_batch_keeps_shape_and_autograd(layer, out_shape):
    x = torch.zeros(0, 3, 8, 8, requires_grad=True)
    out = layer(x)
    assert out.shape == out_shape
    assert out.requires_grad
    out.sum().backward()
    assert x.grad.shape == x.shape
    assert layer.weight.grad is None or torch.equal(layer.weight.grad,
                                                    torch.zeros_like(layer.weight))


def test_non_empty_batch_is_the_stock_layer():
    torch.manual_seed(0)
    ours = Conv2d(3, 4, 3)
    stock = torch.nn.Conv2d(3, 4, 3)
    stock.load_state_dict(ours.state_dict())
    x = torch.randn(2, 3, 6, 6)
    torch.testing.assert_close(ours(x), stock(x))
    with pytest.raises(ValueError, match="N x C x H x W"):
        ours(torch.randn(3, 6, 6))


def test_interpolate_empty_and_full():
    empty = torch.zeros(0, 2, 4, 4, requires_grad=True)
    out = interpolate(empty, scale_factor=2, mode="nearest")
    assert out.shape == (0, 2, 8, 8) and out.requires_grad
    x = torch.randn(1, 2, 4, 4)
    torch.testing.assert_close(interpolate(x, size=(7, 7), mode="bilinear", align_corners=False),
                               F.interpolate(x, size=(7, 7), mode="bilinear", align_corners=False))
