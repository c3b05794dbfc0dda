"""Which detector a config builds: META_ARCHITECTURES, the dense heads' registry, the legacy
MODEL.<NAME>_ON switches (mapped in one place), MODEL.DENSE_HEAD, CUSTOM_IMPORTS; and that every
checkpoint layout recorded before the dense meta-architecture existed loads into it unchanged."""
import json
import os

import pytest
import torch

from maskrcnn_benchmark.config import cfg as default_cfg
from maskrcnn_benchmark.modeling import registry
from maskrcnn_benchmark.modeling.architecture import (
    DENSE_HEAD_FLAGS,
    dense_head_name,
    is_dense_detector,
    meta_architecture_name,
)
from maskrcnn_benchmark.modeling.dense_heads.build import build_dense_head, dense_head_class, registered_dense_heads
from maskrcnn_benchmark.modeling.dense_heads.head import DenseHead
from maskrcnn_benchmark.modeling.detector import build_detection_model
from maskrcnn_benchmark.modeling.detector.dense_detector import DenseDetector
from maskrcnn_benchmark.modeling.detector.generalized_rcnn import GeneralizedRCNN

from helpers import shapes_cfg

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAYOUTS = os.path.join(ROOT, "tests", "fixtures", "state_dict_layouts.json")
HEAD_CLASS = {"RetinaNet": "RetinaNetModule", "FCOS": "FCOSModule", "ATSS": "ATSSModule", "PAA": "PAAModule"}


def with_flags(**flags):
    cfg = default_cfg.clone()
    for key, value in flags.items():
        cfg.MODEL[key] = value
    return cfg


def test_every_legacy_switch_names_a_registered_dense_head():
    assert set(DENSE_HEAD_FLAGS.values()) <= set(registered_dense_heads())
    for name in registered_dense_heads():
        assert issubclass(registry.DENSE_HEADS[name], DenseHead), name


@pytest.mark.parametrize("flag", sorted(DENSE_HEAD_FLAGS))
def test_a_switch_turns_generalized_rcnn_into_the_dense_detector(flag):
    cfg = with_flags(**{flag: True})
    before = cfg.dump()
    assert dense_head_name(cfg) == DENSE_HEAD_FLAGS[flag] and is_dense_detector(cfg)
    assert meta_architecture_name(cfg) == "DenseDetector"
    assert cfg.dump() == before  # the mapping reads the config, it does not change it


def test_two_stage_configs_stay_generalized_rcnn():
    cfg = default_cfg.clone()
    assert dense_head_name(cfg) == "" and not is_dense_detector(cfg)
    assert meta_architecture_name(cfg) == "GeneralizedRCNN"
    assert registry.META_ARCHITECTURES["GeneralizedRCNN"] is GeneralizedRCNN
    assert registry.META_ARCHITECTURES["DenseDetector"] is DenseDetector


def test_dense_head_named_directly_and_the_errors_name_the_keys():
    cfg = with_flags(META_ARCHITECTURE="DenseDetector", DENSE_HEAD="FCOS")
    assert dense_head_name(cfg) == "FCOS" and meta_architecture_name(cfg) == "DenseDetector"
    with pytest.raises(ValueError, match="MODEL.RETINANET_ON, MODEL.ATSS_ON"):
        dense_head_name(with_flags(RETINANET_ON=True, ATSS_ON=True))
    with pytest.raises(ValueError, match="MODEL.DENSE_HEAD='FCOS' contradicts MODEL.PAA_ON"):
        dense_head_name(with_flags(PAA_ON=True, DENSE_HEAD="FCOS"))
    with pytest.raises(ValueError, match="MODEL.META_ARCHITECTURE='DenseDetector' needs a dense head"):
        meta_architecture_name(with_flags(META_ARCHITECTURE="DenseDetector"))
    with pytest.raises(KeyError, match="MODEL.DENSE_HEAD.*CUSTOM_IMPORTS.*unknown 'Nope'; registered: .*'FCOS'"):
        build_dense_head(with_flags(META_ARCHITECTURE="DenseDetector", DENSE_HEAD="Nope"), 64)
    with pytest.raises(KeyError, match="MODEL.META_ARCHITECTURE: unknown 'Nope'"):
        build_detection_model(with_flags(META_ARCHITECTURE="Nope"))


def test_custom_imports_that_fail_are_named():
    cfg = default_cfg.clone()
    cfg.CUSTOM_IMPORTS = ("no_such_module_for_this_test",)
    with pytest.raises(ImportError, match="CUSTOM_IMPORTS: cannot import 'no_such_module_for_this_test'"):
        build_detection_model(cfg)


def test_a_typo_in_any_sampling_free_stage_stops_a_dense_build():
    cfg = shapes_cfg("fcos_R-18-FPN_shapes.yaml", options=["MODEL.SAMPLING_FREE.RPN.BIAS_INIT", "optimla"])
    with pytest.raises(ValueError, match="MODEL.SAMPLING_FREE.RPN.BIAS_INIT: 'optimla'"):
        build_detection_model(cfg)


@pytest.mark.parametrize("detector", sorted(HEAD_CLASS))
@pytest.mark.parametrize("variant", ["", "_sampling_free"])
def test_checkpoints_of_the_old_layout_load_exactly(detector, variant):
    """A state dict with exactly the keys, shapes and dtypes recorded before the refactor (the
    GeneralizedRCNN-with-a-one-stage-RPN layout) loads strictly: nothing missing, nothing extra."""
    name = f"shapes/{detector.lower()}_R-18-FPN_shapes{variant}.yaml"
    with open(LAYOUTS) as handle:
        recorded = json.load(handle)[name]["keys"]
    cfg = shapes_cfg(os.path.basename(name))
    model = build_detection_model(cfg)
    assert isinstance(model, DenseDetector) and type(model.rpn).__name__ == HEAD_CLASS[detector]
    # the config group the head declares is the one whose NUM_CLASSES sized its classifier
    assert type(model.rpn) is dense_head_class(cfg)
    assert model.rpn.num_foreground_classes == cfg.MODEL[model.rpn.config_group].NUM_CLASSES - 1
    generator = torch.Generator().manual_seed(0)
    old_checkpoint = {}
    for line in recorded:
        key, rest = line.split(" ", 1)
        shape_text, dtype = rest.rsplit(" ", 1)
        shape = tuple(int(d) for d in shape_text.strip("()").split(",") if d.strip())
        old_checkpoint[key] = torch.randn(shape, generator=generator).to(getattr(torch, dtype))
    report = model.load_state_dict(old_checkpoint, strict=True)
    assert report.missing_keys == [] and report.unexpected_keys == []
    for key, value in model.state_dict().items():
        assert torch.equal(value, old_checkpoint[key]), key
