"""A dense head registered from outside the package (tests/modeling/toy_dense_head.py) trains from
a yaml alone through the real tools/train_net.py: CUSTOM_IMPORTS brings the module in, the
DenseDetector meta-architecture builds it, the Sampling-Free protocol measures its optimal bias
and scales its losses, the checkpoint holds its weights, and the trained model detects."""
import json
import os

import pytest
import torch

from maskrcnn_benchmark.engine.launch import load_config
from maskrcnn_benchmark.modeling.detector import build_detection_model
from maskrcnn_benchmark.modeling.detector.dense_detector import DenseDetector
from maskrcnn_benchmark.structures.image_list import to_image_list

from helpers import read_metrics, run_train_net

HERE = os.path.dirname(os.path.abspath(__file__))
TOY_YAML = os.path.join(HERE, "toy_dense_head.yaml")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """30 iterations of tools/train_net.py on the shapes data (~40 s on one core)."""
    return run_train_net(TOY_YAML, tmp_path_factory.mktemp("toy"), module_dirs=(HERE,))


def test_the_yaml_alone_trains_the_toy_head(trained):
    records = read_metrics(trained)
    assert [r["iteration"] for r in records] == [5, 10, 15, 20, 25, 30]
    # the head's own losses, scaled by the protocol (guided: -log(delta) term and diagnostics)
    assert {"loss_toy_cls", "loss_toy_box", "loss_toy_log_delta", "sf_toy_g"} <= set(records[0])
    # it learns: measured GIoU loss 0.864 -> 0.642 and raw classification loss 3.92 -> 3.42
    assert records[-1]["loss_toy_box"] < 0.9 * records[0]["loss_toy_box"]
    assert records[-1]["sf_toy_cls"] < records[0]["sf_toy_cls"]
    # the optimal bias was counted with the toy head's own assignment
    counts = json.loads((trained / "sampling_free_counts.json").read_text())
    (entry,) = counts.values()
    total, foreground = entry["toy"]
    assert 0 < foreground < total


def test_the_checkpoint_reloads_into_the_detector_built_from_the_yaml(trained):
    cfg = load_config(TOY_YAML, [])
    model = build_detection_model(cfg)
    assert isinstance(model, DenseDetector) and type(model.rpn).__name__ == "ToyPointsHead"
    state = torch.load(trained / "model_final.pth", map_location="cpu", weights_only=True)["model"]
    report = model.load_state_dict(state, strict=True)
    assert not report.missing_keys and not report.unexpected_keys
    assert "rpn.head.cls_logits.weight" in state and "rpn.loss_scaler.delta" in state
    model.eval()
    with torch.no_grad():
        detections = model(to_image_list([torch.zeros(3, 128, 128), torch.zeros(3, 96, 128)], 32))
    assert [d.size for d in detections] == [(128, 128), (128, 96)]
    for d in detections:
        assert (d.area() > 0).all() and d.has_field("scores") and d.has_field("labels")
