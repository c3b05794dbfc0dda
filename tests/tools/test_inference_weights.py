"""test_net and the demo run trained weights or, only when asked (--random-weights), none: a typo in
OUTPUT_DIR or a backbone-only MODEL.WEIGHT is an error naming where they looked / what is missing."""
import os
import sys

import cv2
import numpy as np
import pytest
import torch

from demo.draw_detections import main as draw_main
from demo.predictor import COCODemo
from maskrcnn_benchmark.engine.launch import load_config
from maskrcnn_benchmark.modeling.detector import build_detection_model
from maskrcnn_benchmark.utils.checkpoint import CheckpointError, Checkpointer, NoWeightsError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "configs", "shapes", "retinanet_R-18-FPN_shapes.yaml")
sys.path.insert(0, os.path.join(ROOT, "tools"))
import test_net  # noqa: E402


@pytest.fixture
def backbone_only(tmp_path):
    """A checkpoint holding the backbone of the shapes RetinaNet, not its head."""
    model = build_detection_model(load_config(CONFIG, []))
    path = tmp_path / "backbone.pth"
    torch.save({"model": {k: v for k, v in model.state_dict().items() if k.startswith("backbone.")}}, path)
    return str(path)


def test_test_net_without_any_weights_names_where_it_looked(tmp_path):
    typo = tmp_path / "ouptut"
    with pytest.raises(NoWeightsError) as error:
        test_net.main(["--config-file", CONFIG, "OUTPUT_DIR", str(typo)])
    message = str(error.value)
    assert str(typo / "last_checkpoint") in message and "MODEL.WEIGHT empty" in message
    assert "--ckpt" in message and "--random-weights" in message
    assert not typo.exists()  # refused before creating anything


def test_test_net_refuses_weights_that_leave_the_head_random(tmp_path, backbone_only):
    with pytest.raises(CheckpointError, match=r"backbone.pth does not fit this model: \d+ of the model's \d+ "
                                              r"parameters are missing \(rpn.head"):
        test_net.main(["--config-file", CONFIG, "--ckpt", backbone_only, "OUTPUT_DIR", str(tmp_path / "eval")])


def test_test_net_random_weights_only_on_request(tmp_path, monkeypatch, one_thread):
    monkeypatch.setenv("MASKRCNN_DATA_DIR", str(tmp_path / "data"))
    out = tmp_path / "eval"
    results = test_net.main(["--config-file", CONFIG, "--random-weights", "OUTPUT_DIR", str(out),
                             "TEST.IMS_PER_BATCH", "16", "MODEL.RETINANET.PRE_NMS_TOP_N", "50"])
    assert len(results) == 1 and (out / "inference" / "shapes_val" / "metrics.json").exists()
    assert "--random-weights: evaluating an untrained model" in (out / "log.txt").read_text()
    with pytest.raises(ValueError, match="choose one"):
        test_net.main(["--config-file", CONFIG, "--random-weights", "--ckpt", "x.pth"])


def test_demo_refuses_to_draw_random_boxes_unless_asked(tmp_path, backbone_only):
    # an untrained head scores about its prior (0.01): a lower threshold lets it report boxes
    low_threshold = ["MODEL.RETINANET.INFERENCE_TH", "0.001"]
    cfg = load_config(CONFIG, ["OUTPUT_DIR", str(tmp_path / "nothing-here"), *low_threshold])
    with pytest.raises(NoWeightsError, match=r"nothing-here.*--weights"):
        COCODemo(cfg)
    with pytest.raises(CheckpointError, match="parameters are missing"):
        COCODemo(cfg, weights=backbone_only)
    demo = COCODemo(cfg, random_weights=True, confidence_threshold=0.0)
    assert len(demo.predict(np.full((96, 96, 3), 90, dtype=np.uint8))) > 0

    image = tmp_path / "in.png"
    cv2.imwrite(str(image), np.full((96, 96, 3), 90, dtype=np.uint8))
    command = ["--config-file", CONFIG, "--input", str(image), "--output", str(tmp_path / "out.png"), "--allow-empty",
               "OUTPUT_DIR", str(tmp_path / "nothing-here"), *low_threshold]
    with pytest.raises(NoWeightsError):
        draw_main(command)
    assert draw_main(command[:2] + ["--random-weights"] + command[2:]) == [str(tmp_path / "out.png")]


def test_demo_uses_the_newest_checkpoint_of_output_dir(tmp_path):
    cfg = load_config(CONFIG, ["OUTPUT_DIR", str(tmp_path)])
    torch.manual_seed(3)
    trained = build_detection_model(cfg)
    Checkpointer(trained, save_dir=str(tmp_path), save_to_disk=True).save("model_final")
    demo = COCODemo(cfg)
    assert all(torch.equal(a, b) for a, b in zip(trained.state_dict().values(), demo.model.state_dict().values()))
