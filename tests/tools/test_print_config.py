"""tools/print_config.py: the merged config as yaml, or only what differs from the defaults."""
import os
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import print_config  # noqa: E402

from maskrcnn_benchmark.config import ConfigError, cfg as default_cfg  # noqa: E402
from maskrcnn_benchmark.engine.launch import load_config  # noqa: E402

SAMPLING_FREE = os.path.join(ROOT, "configs", "shapes", "faster_rcnn_R_18_FPN_shapes_sampling_free.yaml")


def test_full_print_is_the_loaded_config(capsys):
    print_config.main(["--config-file", SAMPLING_FREE, "SOLVER.BASE_LR", "0.02"])
    printed = yaml.safe_load(capsys.readouterr().out)
    rebuilt = default_cfg.clone()
    rebuilt.merge_from_other_cfg(type(default_cfg)(printed))
    assert rebuilt == load_config(SAMPLING_FREE, ["SOLVER.BASE_LR", "0.02"])
    assert printed["SOLVER"]["BASE_LR"] == 0.02


def test_diff_holds_exactly_the_changed_keys_through_the_base_chain():
    diff = yaml.safe_load(print_config.render(SAMPLING_FREE, ["SOLVER.MAX_ITER", "77"], diff=True))
    # from the file itself
    assert diff["MODEL"]["SAMPLING_FREE"]["RPN"] == {"SAMPLER": False, "BIAS_INIT": "optimal", "GUIDED": "guided"}
    assert diff["MODEL"]["ROI_HEADS"]["SCORE_THRESH"] == 0.001
    # from its _BASE_ and from the override
    assert diff["MODEL"]["ROI_BOX_HEAD"]["NUM_CLASSES"] == 5
    assert diff["SOLVER"]["MAX_ITER"] == 77
    # untouched keys are absent, also inside changed sections
    assert "RETINANET" not in diff["MODEL"] and "MOMENTUM" not in diff["SOLVER"]
    assert "ONE_STAGE" not in diff["MODEL"]["SAMPLING_FREE"]


def test_diff_of_the_defaults_is_empty_and_a_value_equal_to_its_default_is_not_a_change():
    assert print_config.render("", [], diff=True) == "{}\n"
    same = str(default_cfg.SOLVER.BASE_LR)
    assert print_config.render("", ["SOLVER.BASE_LR", same], diff=True) == "{}\n"


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match="SOLVER.NOPE"):
        print_config.render("", ["SOLVER.NOPE", "1"])
