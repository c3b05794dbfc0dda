"""Weights files in the layout of maskrcnn-benchmark's model zoo and of the FCOS / ATSS / PAA and
Sampling-Free releases load into our models exactly and quietly: ``{"model", "optimizer",
"scheduler", "iteration"}``, ``module.`` prefixes, the stored cell anchors, per-level scales of shape
[1], the quality branch named ``centerness`` (ATSS) or ``iou_pred`` (PAA), and no loss-scaler buffers.
The files are written here, from a model of ours, in that layout."""
import logging

import pytest
import torch

from maskrcnn_benchmark.modeling.detector import build_detection_model
from maskrcnn_benchmark.utils.checkpoint import CheckpointError, DetectronCheckpointer
from maskrcnn_benchmark.utils.model_serialization import load_state_dict

from helpers import shapes_cfg


def _model(config, seed, *options):
    torch.manual_seed(seed)
    cfg = shapes_cfg(config, options=options)
    return cfg, build_detection_model(cfg).eval()


def _upstream_layout(model, quality_name=None):
    """``model``'s weights as maskrcnn-benchmark's Checkpointer wrote them from a DDP model."""
    state = {}
    for key, value in model.state_dict().items():
        if "loss_scaler" in key:
            continue  # not in their models
        if key.endswith(".scale") and value.dim() == 0:
            value = value.reshape(1)
        if quality_name is not None:
            key = key.replace("rpn.head.quality_pred.", f"rpn.head.{quality_name}.")
        state["module." + key] = value.clone()
    generator = getattr(model.rpn, "anchor_generator", None)  # FCOS has none, in either code base
    for index, anchors in enumerate(generator.cell_anchors if generator is not None else ()):
        state[f"module.rpn.anchor_generator.cell_anchors.{index}"] = anchors.clone()
    return {"model": state, "optimizer": {"state": {}, "param_groups": [{"lr": 0.01, "params": [0, 1]}]},
            "scheduler": {"last_epoch": 90000, "milestones": [60000, 80000]}, "iteration": 90000}


def _same_weights(first, second):
    a, b = first.state_dict(), second.state_dict()
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a if "loss_scaler" not in k)


@pytest.mark.parametrize("config, quality_name", [
    ("paa_R-18-FPN_shapes.yaml", "iou_pred"),
    ("atss_R-18-FPN_shapes.yaml", "centerness"),
    ("fcos_R-18-FPN_shapes.yaml", None),
    ("faster_rcnn_R_18_FPN_shapes.yaml", None),
])
def test_upstream_file_loads_exactly_and_quietly(config, quality_name, tmp_path, caplog):
    cfg, source = _model(config, 0)
    _, target = _model(config, 1)
    assert not _same_weights(source, target)
    path = tmp_path / "model_final.pth"
    torch.save(_upstream_layout(source, quality_name), path)

    with caplog.at_level(logging.DEBUG, logger="maskrcnn_benchmark"):
        extras = DetectronCheckpointer(cfg, target).load(str(path), use_latest=False, match="parameters")
    assert _same_weights(source, target)
    assert extras == {"iteration": 90000}
    noisy = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO and "Loading checkpoint" not in
             r.getMessage()]
    assert len(noisy) == 1 and "optimizer and scheduler state: not used" in noisy[0]


def test_report_of_an_upstream_state_dict_has_nothing_missing_or_unexpected():
    _, source = _model("atss_R-18-FPN_shapes.yaml", 0)
    _, target = _model("atss_R-18-FPN_shapes.yaml", 1)
    report = load_state_dict(target, _upstream_layout(source, "centerness")["model"], match="parameters")
    assert report["missing"] == [] and report["unexpected"] == [] and report["mismatched"] == []
    assert report["stored_buffer_differences"] == []
    assert sorted(report["defaulted"]) == ["rpn.loss_scaler.last_ratio", "rpn.loss_scaler.ratio_count",
                                           "rpn.loss_scaler.ratio_sum"]
    # resuming needs the training state: an exact match refuses the file
    with pytest.raises(Exception, match="loss_scaler"):
        load_state_dict(target, _upstream_layout(source, "centerness")["model"], match="exact")


def test_stored_anchors_of_another_convention_are_a_warning(tmp_path, caplog):
    # weights made with maskrcnn-benchmark's anchors, loaded into a model with continuous anchors
    cfg, source = _model("retinanet_R-18-FPN_shapes.yaml", 0)
    continuous_cfg, target = _model("retinanet_R-18-FPN_shapes.yaml", 1, "MODEL.BOX_CONVENTION", "continuous")
    path = tmp_path / "retinanet.pth"
    torch.save(_upstream_layout(source), path)
    with caplog.at_level(logging.WARNING, logger="maskrcnn_benchmark"):
        DetectronCheckpointer(continuous_cfg, target).load(str(path), use_latest=False, match="parameters")
    assert _same_weights(source, target)  # the weights themselves load
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "rpn.position_generator.cell_anchors.0: max difference" in warnings[0]
    assert "MODEL.BOX_CONVENTION" in warnings[0]


def test_a_real_shape_conflict_is_still_refused(tmp_path):
    cfg, source = _model("atss_R-18-FPN_shapes.yaml", 0)
    _, target = _model("atss_R-18-FPN_shapes.yaml", 1)
    layout = _upstream_layout(source, "centerness")
    layout["model"]["module.rpn.head.scales.0.scale"] = torch.ones(2)
    path = tmp_path / "bad.pth"
    torch.save(layout, path)
    with pytest.raises(CheckpointError, match=r"rpn.head.scales.0.scale: model \(\) vs loaded"):
        DetectronCheckpointer(cfg, target).load(str(path), use_latest=False, match="parameters")


def test_paa_yaml_key_use_iou_pred_is_accepted(tmp_path):
    # PAA's released yaml files set MODEL.PAA.USE_IOU_PRED True (the only head implemented here)
    yaml = tmp_path / "paa.yaml"
    yaml.write_text("MODEL:\n  PAA:\n    USE_IOU_PRED: True\n")
    cfg = shapes_cfg("paa_R-18-FPN_shapes.yaml")
    cfg.merge_from_file(str(yaml))
    assert cfg.MODEL.PAA.USE_IOU_PRED is True
    build_detection_model(cfg)
    cfg.MODEL.PAA.USE_IOU_PRED = False
    with pytest.raises(ValueError, match="MODEL.PAA.USE_IOU_PRED False"):
        build_detection_model(cfg)
