"""The compiled extension: it loads, registers its operators, and carries CUDA when expected."""
import os

import pytest
import torch

from maskrcnn_benchmark.layers import compiled_with_cuda


def test_extension_registers_every_operator():
    names = ["compiled_with_cuda", "roi_align_forward", "roi_align_backward", "roi_pool_forward",
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
    from maskrcnn_benchmark.layers import nms, roi_align, roi_pool, sigmoid_focal_loss

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
    boxes = rois[:, 1:]
    scores = torch.rand(40, generator=g)
    assert torch.equal(nms(boxes.cuda(), scores.cuda(), 0.5).cpu(), nms(boxes, scores, 0.5))
    logits = torch.randn(30, 4, generator=g)
    labels = torch.randint(-1, 5, (30,), generator=g)
    torch.testing.assert_close(sigmoid_focal_loss(logits.cuda(), labels.cuda(), 2.0, 0.25).cpu(),
                               sigmoid_focal_loss(logits, labels, 2.0, 0.25))
