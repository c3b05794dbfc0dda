"""tools/count_flops.py: parameter and FLOP counts, checked against torchvision's counterpart
and against how convolutions and their backward scale."""
import os
import sys

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import count_flops  # noqa: E402

from maskrcnn_benchmark.engine.launch import load_config  # noqa: E402

SHAPES = os.path.join(ROOT, "configs", "shapes", "faster_rcnn_R_18_FPN_shapes.yaml")
R50 = os.path.join(ROOT, "configs", "e2e_faster_rcnn_R_50_FPN_1x.yaml")


def test_backbone_flops_equal_torchvisions_resnet50_fpn(one_thread):
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone

    # torchvision strides in the 3 x 3 convolution, the Caffe2 R-50 in the 1 x 1 one
    cfg = load_config(R50, ["MODEL.WEIGHT", "", "MODEL.DEVICE", "cpu", "MODEL.RESNETS.STRIDE_IN_1X1", "False",
                            "MODEL.RPN.POST_NMS_TOP_N_TEST", "50", "MODEL.RPN.FPN_POST_NMS_TOP_N_TEST", "50"])
    ours = count_flops.count(cfg, 128, 160)
    theirs = resnet_fpn_backbone(backbone_name="resnet50", weights=None).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        theirs(torch.rand(1, 3, 128, 160))
    assert ours["per_module"]["backbone"] == counter.get_total_flops()
    assert ours["params"] == pytest.approx(41.7e6, rel=0.01)  # torchvision's fasterrcnn_resnet50_fpn
    assert ours["flops"] == sum(ours["per_module"].values())  # inference: every FLOP inside a module


def test_dense_parts_scale_with_the_image_area(one_thread):
    cfg = load_config(SHAPES, ["MODEL.DEVICE", "cpu"])
    small = count_flops.count(cfg, 64, 64)
    large = count_flops.count(cfg, 128, 128)
    # the backbone and the RPN head run on every feature-map position: 4x the pixels, 4x the FLOPs
    assert large["per_module"]["rpn"] == 4 * small["per_module"]["rpn"]
    assert large["per_module"]["backbone"] == 4 * small["per_module"]["backbone"]
    assert large["params"] == small["params"] == large["trainable_params"]


def test_training_forward_and_backward(one_thread):
    cfg = load_config(SHAPES, ["MODEL.DEVICE", "cpu"])
    inference = count_flops.count(cfg, 96, 96)
    train = count_flops.count(cfg, 96, 96, mode="train")
    # the same convolutions run forward in both modes
    assert train["per_module"]["backbone"] == inference["per_module"]["backbone"]
    assert inference["backward_flops"] == 0 and inference["flops"] == inference["forward_flops"]
    # backward: a weight and an input gradient per layer (no input gradient for the stem), each
    # as costly as the layer's forward
    assert train["forward_flops"] < train["backward_flops"] <= 2 * train["forward_flops"]
    assert train["flops"] == train["forward_flops"] + train["backward_flops"]
    with pytest.raises(ValueError, match="mode"):
        count_flops.count(cfg, 96, 96, mode="fast")


def test_command_prints_counts(capsys, one_thread):
    count_flops.main(["--config-file", SHAPES, "--image-size", "64", "--image-width", "96"])
    out = capsys.readouterr().out
    assert "at 64 x 96, batch 1, inference" in out and "parameters: 1.78 M" in out
    assert "backbone" in out and "GFLOPs" in out
    with pytest.raises(SystemExit):
        count_flops.main(["--config-file", SHAPES, "--image-size", "16"])
