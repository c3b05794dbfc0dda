"""Exported detectors (maskrcnn_benchmark/export, tools/export_model.py) give PyTorch's detections.

Faster R-CNN and RetinaNet of configs/shapes/ with random weights (RetinaNet's class prior raised
so that many anchors pass its score threshold) on generated shapes images, 128 x 128: the
torch.export program reproduces the eager detections exactly, the ONNX file run by onnxruntime
to float rounding; FCOS and ATSS through torch.export too. Each comparison needs detections to
compare, which is checked too.
"""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from maskrcnn_benchmark import export
from maskrcnn_benchmark.config import cfg as default_cfg
from maskrcnn_benchmark.data.datasets.shapes import generate_shapes
from maskrcnn_benchmark.data.transforms import build_transforms
from maskrcnn_benchmark.export.ops import batched_nms_keep, nms_keep
from maskrcnn_benchmark.modeling.detector import build_detection_model

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = ("faster_rcnn_R_18_FPN_shapes", "retinanet_R-18-FPN_shapes")


def _config(name, *opts):
    cfg = default_cfg.clone()
    cfg.merge_from_file(os.path.join(ROOT, "configs", "shapes", name + ".yaml"))
    cfg.merge_from_list(list(opts))
    cfg.freeze()
    return cfg


def _model(name):
    torch.manual_seed(0)
    model = build_detection_model(_config(name)).eval()
    if hasattr(model, "dense_head"):
        # a random head keeps the 0.01 prior: no score would pass the 0.05 threshold
        torch.nn.init.zeros_(model.dense_head.head.cls_logits.bias)
    return model


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Three generated shapes images as the detector receives them (1 x 3 x 128 x 128 each)."""
    root = tmp_path_factory.mktemp("export_shapes")
    generate_shapes(str(root), num_images=3, seed=5)
    transforms = build_transforms(_config(CONFIGS[0]), is_train=False)
    batches = []
    for path in sorted((root / "images").iterdir()):
        tensor, _ = transforms(Image.open(path).convert("RGB"), None)
        batches.append(tensor[None])
    return batches


@pytest.fixture(scope="module", params=CONFIGS)
def model(request):
    return _model(request.param)


def _eager(model, image):
    with torch.no_grad():
        (reference,) = model(image)
    assert len(reference) > 0, "no detections to compare"
    return reference


def test_torch_export_gives_the_eager_detections_exactly(model, images):
    program = export.export_program(model, images[0])
    for image in images:
        assert export.disagreement(_eager(model, image), program.module()(image), atol=0.0) is None


@pytest.mark.parametrize("name", ["fcos_R-18-FPN_shapes", "atss_R-18-FPN_shapes"])
def test_torch_export_of_the_other_dense_heads_is_exact(name, images):
    model = _model(name)
    program = export.export_program(model, images[0])
    assert export.disagreement(_eager(model, images[1]), program.module()(images[1]), atol=0.0) is None


def test_onnx_gives_the_eager_detections(model, images, tmp_path):
    pytest.importorskip("onnxscript")
    pytest.importorskip("onnxruntime")
    path = export.save(model, images[0], "onnx", tmp_path / "detector.onnx")
    run = export.load_runner("onnx", path)
    for image in images:
        assert export.disagreement(_eager(model, image), run(image), atol=1e-4) is None


def test_the_exportable_twin_pads_with_background():
    model = _model(CONFIGS[0])
    image = torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        boxes, scores, labels = export.exportable(model)(image)
        (reference,) = model(image)
    assert boxes.shape == (model.roi_heads.box.post_processor.detections_per_img, 4)
    padding = labels == 0
    # the detections come first, by decreasing score; the rest is zeros
    assert not padding[: len(reference)].any() and padding[len(reference):].all()
    assert (scores[padding] == 0).all() and (boxes[padding] == 0).all()
    assert (scores[: len(reference)].diff() <= 0).all()


def test_nms_keep_agrees_with_torchvision_on_the_valid_boxes():
    generator = torch.Generator().manual_seed(0)
    corners = torch.rand(300, 2, generator=generator) * 100
    boxes = torch.cat([corners, corners + 5 + torch.rand(300, 2, generator=generator) * 40], dim=1)
    scores = torch.rand(300, generator=generator)
    valid = torch.rand(300, generator=generator) > 0.3
    keep = nms_keep(boxes, scores, valid, 0.5)
    rows = torch.nonzero(valid).squeeze(1)
    expected = torch.zeros(300, dtype=torch.bool)
    expected[rows[torchvision.ops.nms(boxes[rows], scores[rows], 0.5)]] = True
    assert torch.equal(keep, expected)
    assert 0 < keep.sum() < valid.sum()  # something suppressed, something kept
    assert not nms_keep(boxes, scores, torch.zeros_like(valid), 0.5).any()


@pytest.mark.parametrize("name, opts, culprit", [
    ("mask_rcnn_R_18_FPN_shapes", (), "mask"),
    ("paa_R-18-FPN_shapes", ("MODEL.PAA.INFERENCE_SCORE_VOTING", "True"), "score voting"),
    ("faster_rcnn_R_18_FPN_shapes", ("MODEL.ROI_HEADS.NMS", "0.0"), "MODEL.ROI_HEADS.NMS"),
])
def test_what_cannot_be_exported_is_refused_by_name(name, opts, culprit):
    model = build_detection_model(_config(name, *opts)).eval()
    with pytest.raises(NotImplementedError, match=culprit):
        export.exportable(model)


def test_export_model_cli_writes_a_program_that_reproduces_pytorch(tmp_path):
    output = tmp_path / "frcnn.pt2"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
    done = subprocess.run(
        [sys.executable, "tools/export_model.py", "--config-file", "configs/shapes/faster_rcnn_R_18_FPN_shapes.yaml",
         "--format", "torch_export", "--output", str(output), "--random-weights"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "on a random image it gives PyTorch's" in done.stdout and output.is_file()
    boxes, scores, labels = export.load_runner("torch_export", output)(torch.zeros(1, 3, 128, 128))
    assert boxes.shape[1] == 4 and scores.shape == labels.shape


def test_export_model_cli_refuses_a_size_the_backbone_cannot_take(tmp_path):
    done = subprocess.run(
        [sys.executable, "tools/export_model.py", "--config-file", "configs/shapes/retinanet_R-18-FPN_shapes.yaml",
         "--format", "onnx", "--output", str(tmp_path / "r.onnx"), "--random-weights", "--image-size", "100", "128"],
        cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=600,
    )
    assert done.returncode != 0 and "SIZE_DIVISIBILITY (32)" in done.stderr
    assert not (tmp_path / "r.onnx").exists()


def test_nms_keep_follows_the_box_convention_as_eager_nms_does():
    # [0, 0, 9, 4] inside [0, 0, 9, 9]: IoU 36 / 81 = 0.44 continuous, 50 / 100 = 0.5 with +1 widths
    boxes = torch.tensor([[0.0, 0.0, 9.0, 9.0], [0.0, 0.0, 9.0, 4.0]])
    scores, valid = torch.tensor([0.9, 0.8]), torch.ones(2, dtype=torch.bool)
    assert nms_keep(boxes, scores, valid, 0.5, False).tolist() == [True, True]
    assert nms_keep(boxes, scores, valid, 0.5, True).tolist() == [True, False]  # suppressed at IoU >= 0.5
    categories = torch.tensor([1, 2])
    assert batched_nms_keep(boxes, scores, valid, categories, 0.5, True).tolist() == [True, True]
    assert batched_nms_keep(boxes, scores, valid, torch.tensor([3, 3]), 0.5, True).tolist() == [True, False]
