"""Sigmoid focal loss: compiled kernel vs a direct formula and torchvision.ops.sigmoid_focal_loss."""
import math

import pytest
import torch
import torch.nn.functional as F
import torchvision

from maskrcnn_benchmark.layers import SigmoidFocalLoss, sigmoid_focal_loss, sigmoid_focal_loss_cpu


def direct_formula(logits, targets, gamma, alpha):
    """Element by element from the paper: FL(p_t) = -alpha_t (1 - p_t)^gamma log(p_t)."""
    out = torch.zeros_like(logits)
    for i in range(logits.shape[0]):
        for j in range(logits.shape[1]):
            label = int(targets[i])
            if label < 0:
                continue
            p = 1.0 / (1.0 + math.exp(-float(logits[i, j])))
            if label == j + 1:
                out[i, j] = -alpha * (1 - p) ** gamma * math.log(p)
            else:
                out[i, j] = -(1 - alpha) * p ** gamma * math.log(1 - p)
    return out


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(12, 5, generator=g, dtype=torch.float64) * 3
    targets = torch.tensor([0, 1, 2, 3, 4, 5, 0, -1, 5, 2, 0, 1])
    return logits, targets


@pytest.mark.parametrize("gamma,alpha", [(2.0, 0.25), (0.0, 0.5), (1.0, 0.3), (1.5, 0.75)])
def test_forward_matches_direct_formula(batch, gamma, alpha):
    logits, targets = batch
    expected = direct_formula(logits, targets, gamma, alpha)
    torch.testing.assert_close(sigmoid_focal_loss(logits, targets, gamma, alpha), expected)
    torch.testing.assert_close(sigmoid_focal_loss_cpu(logits, targets, gamma, alpha), expected)
    assert torch.all(sigmoid_focal_loss(logits, targets, gamma, alpha)[7] == 0), "ignored row"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_torchvision_with_one_hot_targets(batch, dtype):
    logits, targets = batch
    logits = logits.to(dtype)
    keep = targets >= 0  # torchvision has no ignore label
    one_hot = F.one_hot(targets[keep], num_classes=6)[:, 1:].to(dtype)
    reference = torchvision.ops.sigmoid_focal_loss(logits[keep], one_hot, alpha=0.25, gamma=2.0)
    ours = sigmoid_focal_loss(logits[keep], targets[keep], 2.0, 0.25)
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("gamma,alpha", [(2.0, 0.25), (1.0, 0.4), (0.5, 0.6)])
def test_gradient_matches_autograd_of_formula(batch, gamma, alpha):
    logits, targets = batch
    weights = torch.rand(logits.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ours_in = logits.clone().requires_grad_()
    (sigmoid_focal_loss(ours_in, targets, gamma, alpha) * weights).sum().backward()
    reference_in = logits.clone().requires_grad_()
    (sigmoid_focal_loss_cpu(reference_in, targets, gamma, alpha) * weights).sum().backward()
    torch.testing.assert_close(ours_in.grad, reference_in.grad)
    assert torch.autograd.gradcheck(
        lambda x: sigmoid_focal_loss(x, targets, gamma, alpha), (logits.clone().requires_grad_(),))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_reduced_precision_computes_in_float32(batch, dtype):
    # Inputs rounded to dtype, arithmetic in float32, one rounding of the result.
    logits, targets = batch
    low = logits.to(dtype).requires_grad_()
    loss = sigmoid_focal_loss(low, targets, 2.0, 0.25)
    full = low.detach().float().requires_grad_()
    expected = sigmoid_focal_loss_cpu(full, targets, 2.0, 0.25)
    assert loss.dtype == dtype
    torch.testing.assert_close(loss.float(), expected.detach().to(dtype).float(), atol=1e-3, rtol=1e-2)
    loss.sum().backward()
    expected.sum().backward()
    torch.testing.assert_close(low.grad.float(), full.grad.to(dtype).float(), atol=1e-3, rtol=1e-2)


def test_extreme_logits_stay_finite():
    logits = torch.tensor([[-100.0, 100.0], [100.0, -100.0]], requires_grad=True)
    targets = torch.tensor([1, 0])
    loss = sigmoid_focal_loss(logits, targets, 2.0, 0.25)
    loss.sum().backward()
    assert torch.isfinite(loss).all() and torch.isfinite(logits.grad).all()
    # Row 0: class 1 confidently wrong (loss ~ alpha * 100), class 2 confidently wrong negative.
    torch.testing.assert_close(loss[0], torch.tensor([25.0, 75.0]), rtol=1e-4, atol=1e-4)


def test_module_sums_and_accepts_int32_labels(batch):
    logits, targets = batch
    module = SigmoidFocalLoss(gamma=2.0, alpha=0.25)
    total = module(logits, targets.int())
    torch.testing.assert_close(total, direct_formula(logits, targets, 2.0, 0.25).sum())
    assert "gamma=2.0" in repr(module)


def test_bad_arguments_name_the_culprit():
    with pytest.raises(TypeError, match="targets must be integer labels"):
        sigmoid_focal_loss(torch.zeros(3, 2), torch.zeros(3), 2.0, 0.25)
    with pytest.raises(ValueError, match="one label per row"):
        sigmoid_focal_loss(torch.zeros(3, 2), torch.zeros(4, dtype=torch.long), 2.0, 0.25)
