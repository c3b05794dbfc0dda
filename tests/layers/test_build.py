"""The compiled extension: it loads, registers its operators, and carries CUDA when expected."""
import os

import pytest
import torch

from maskrcnn_benchmark.layers import compiled_with_cuda


def test_extension_registers_every_operator():
    names = ["compiled_with_cuda", "roi_align_forward", "roi_align_backward", "roi_align_forward_into",
             "roi_pool_forward",
             "roi_pool_backward", "nms", "sigmoid_focal_loss_forward",
             "sigmoid_focal_loss_backward"]
    for name in names:
        assert hasattr(torch.ops.maskrcnn_benchmark, name), name
    assert isinstance(compiled_with_cuda(), bool)


@pytest.mark.skipif(os.environ.get("MRCNN_EXPECT_CUDA") != "1",
                    reason="set MRCNN_EXPECT_CUDA=1 when the build used FORCE_CUDA=1 / a GPU")
def test_cuda_build_carries_cuda_kernels():
    assert compiled_with_cuda(), "built without WITH_CUDA although MRCNN_EXPECT_CUDA=1"


@pytest.mark.skipif(not (torch.cuda.is_available() and compiled_with_cuda()),
                    reason="needs a GPU and a CUDA build")
def test_cuda_kernels_agree_with_cpu_kernels():
    from maskrcnn_benchmark.layers import batched_nms, nms, roi_align, roi_pool, sigmoid_focal_loss

    g = torch.Generator().manual_seed(0)
    features = torch.randn(2, 4, 20, 24, generator=g)
    xy = torch.rand(40, 2, generator=g) * 60
    rois = torch.cat([torch.randint(0, 2, (40, 1), generator=g).float(), xy,
                      xy + torch.rand(40, 2, generator=g) * 30], dim=1)
    for aligned in (False, True):
        torch.testing.assert_close(roi_align(features.cuda(), rois.cuda(), 7, 0.5, 0, aligned).cpu(),
                                   roi_align(features, rois, 7, 0.5, 0, aligned), atol=1e-5, rtol=0)
    torch.testing.assert_close(roi_pool(features.cuda(), rois.cuda(), 7, 0.5).cpu(),
                               roi_pool(features, rois, 7, 0.5))
    # NMS in both box conventions, on random boxes and on rounded ones with zero-area copies and
    # exact ties at the threshold; plus the batched form.
    boxes = rois[:, 1:]
    scores = torch.rand(40, generator=g)
    corners = (torch.rand(300, 2, generator=g) * 40).round()
    grid_boxes = torch.cat([corners, corners + (torch.rand(300, 2, generator=g) * 8).round()], dim=1)
    grid_boxes = torch.cat([grid_boxes, grid_boxes[:50]])  # duplicates, zero-area ones among them
    grid_scores = torch.rand(350, generator=g)
    for legacy in (False, True):
        for threshold in (0.0, 0.5, 0.7):
            for b, s in ((boxes, scores), (grid_boxes, grid_scores)):
                assert torch.equal(nms(b.cuda(), s.cuda(), threshold, legacy=legacy).cpu(),
                                   nms(b, s, threshold, legacy=legacy)), (legacy, threshold)
        idxs = torch.randint(0, 3, (350,), generator=g)
        assert torch.equal(batched_nms(grid_boxes.cuda(), grid_scores.cuda(), idxs.cuda(), 0.5, legacy).cpu(),
                           batched_nms(grid_boxes, grid_scores, idxs, 0.5, legacy))
    logits = torch.randn(30, 4, generator=g)
    labels = torch.randint(-1, 5, (30,), generator=g)
    torch.testing.assert_close(sigmoid_focal_loss(logits.cuda(), labels.cuda(), 2.0, 0.25).cpu(),
                               sigmoid_focal_loss(logits, labels, 2.0, 0.25))

    # The multi-level pooler's row-selected forward and backward.
    from maskrcnn_benchmark.layers.roi_align import roi_align_backward, roi_align_into

    rows = torch.tensor([5, 0, 17, 33])
    outputs = []
    for device in ("cuda", "cpu"):
        output = torch.zeros(40, 4, 7, 7, device=device)
        roi_align_into(output, features.to(device), rois.to(device), rows.to(device), (7, 7), 0.5, 0)
        outputs.append(output.cpu())
    torch.testing.assert_close(outputs[0], outputs[1], atol=1e-5, rtol=0)
    grad_output = torch.randn(40, 4, 7, 7, generator=g)
    grads = [roi_align_backward(grad_output.to(device), rois.to(device), 0.5, (7, 7), 0, False,
                                tuple(features.shape), rows=rows.to(device)).cpu()
             for device in ("cuda", "cpu")]
    torch.testing.assert_close(grads[0], grads[1], atol=1e-4, rtol=1e-4)
    # The focal loss gradient (CPU: ATen exp / log1p + fused loop; CUDA: one fused kernel).
    cuda_logits = logits.cuda().requires_grad_()
    cpu_logits = logits.clone().requires_grad_()
    sigmoid_focal_loss(cuda_logits, labels.cuda(), 2.0, 0.25).sum().backward()
    sigmoid_focal_loss(cpu_logits, labels, 2.0, 0.25).sum().backward()
    torch.testing.assert_close(cuda_logits.grad.cpu(), cpu_logits.grad, atol=1e-5, rtol=1e-4)
