"""Every yaml under configs/ builds its detector (on CPU, random weights, nothing loaded)."""
import glob
import json
import os
import sys

import pytest
import torch

from maskrcnn_benchmark.config import cfg as global_cfg
from maskrcnn_benchmark.modeling.detector import build_detection_model

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = sorted(glob.glob(os.path.join(ROOT, "configs", "**", "*.yaml"), recursive=True))
LAYOUTS_FILE = os.path.join(ROOT, "tests", "fixtures", "state_dict_layouts.json")

sys.path.insert(0, os.path.join(ROOT, "tests", "fixtures"))
from record_state_dict_keys import layout_digest, layout_lines  # noqa: E402

with open(LAYOUTS_FILE) as _handle:
    RECORDED_LAYOUTS = json.load(_handle)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: os.path.relpath(p, os.path.join(ROOT, "configs")))
def test_config_builds_a_detector(path):
    cfg = global_cfg.clone()
    cfg.merge_from_file(path)
    cfg.MODEL.DEVICE = "cpu"
    model = build_detection_model(cfg)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable > 0
    assert all(torch.isfinite(p).all() for p in model.parameters())
    guided = [name for name, _ in model.named_parameters() if name.endswith("delta")]
    stages = [cfg.MODEL.SAMPLING_FREE[s].GUIDED for s in ("ONE_STAGE", "RPN", "ROI")]
    if "guided" not in stages:
        assert guided == [], f"{path}: a delta parameter exists but no stage asks for guided scaling"
    else:
        assert guided, f"{path}: guided scaling is asked for but the model has no delta parameter"

    # Checkpoints written before must keep loading: the state_dict layout is the recorded one.
    name = os.path.relpath(path, os.path.join(ROOT, "configs"))
    if name in RECORDED_LAYOUTS:
        recorded = RECORDED_LAYOUTS[name]
        lines = layout_lines(model)
        if "keys" in recorded:
            assert lines == recorded["keys"], (
                f"{name}: state_dict layout changed: missing {sorted(set(recorded['keys']) - set(lines))[:10]}, "
                f"new {sorted(set(lines) - set(recorded['keys']))[:10]}"
            )
        assert layout_digest(lines) == recorded["sha1"], (
            f"{name}: state_dict layout changed ({len(lines)} keys, {recorded['num_keys']} recorded)"
        )
