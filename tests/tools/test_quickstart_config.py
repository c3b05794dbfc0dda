"""The quickstart's detector (configs/shapes/quickstart_*.yaml, run by tools/quickstart.sh).

Its measured AP (README, the script's comments) needs the full 500-iteration run, minutes on two
cores, so it is not asserted here; what is: both quickstart configs train through
tools/train_net.py with finite losses, and the script's defaults are the config's schedule, so the
numbers quoted for the config are those of the script's run.
"""
import math
import os
import re

import pytest

from helpers import ROOT, SHAPES_CONFIGS, read_metrics, shapes_cfg

QUICKSTART = "quickstart_faster_rcnn_R_18_FPN_shapes.yaml"
QUICKSTART_SF = "quickstart_faster_rcnn_R_18_FPN_shapes_sampling_free.yaml"


@pytest.mark.parametrize("name", [QUICKSTART, QUICKSTART_SF])
def test_the_quickstart_configs_train_through_train_net(name, train_net, tmp_path):
    train_net(tmp_path, "SOLVER.MAX_ITER", 4, "SOLVER.STEPS", "(3,)", "MODEL.SAMPLING_FREE.SAMPLE_IMAGES", 8,
              config=os.path.join(SHAPES_CONFIGS, name))
    assert (tmp_path / "model_final.pth").is_file()
    records = read_metrics(tmp_path)
    assert records and records[-1]["iteration"] == 4
    losses = {key: value for key, value in records[-1].items() if key.startswith("loss")}
    assert losses and all(math.isfinite(value) for value in losses.values()), losses


def _script_default(script, variable):
    match = re.search(r"^{}=\$\{{{}:-([^}}]*)\}}".format(variable, variable), script, re.MULTILINE)
    assert match, f"tools/quickstart.sh sets no default for {variable}"
    return match.group(1)


def test_quickstart_script_runs_the_configs_own_schedule():
    with open(os.path.join(ROOT, "tools", "quickstart.sh")) as handle:
        script = handle.read()
    assert _script_default(script, "CONFIG") == "configs/shapes/" + QUICKSTART
    assert _script_default(script, "SF_CONFIG") == "configs/shapes/" + QUICKSTART_SF
    cfg = shapes_cfg(QUICKSTART)
    iterations = int(_script_default(script, "ITERS"))
    assert iterations == cfg.SOLVER.MAX_ITER
    # the script scales the lr steps with ITERS (2/3 and 9/10 of the run) and warms up 50 iterations
    assert (iterations * 2 // 3, iterations * 9 // 10) == tuple(cfg.SOLVER.STEPS)
    assert "SOLVER.WARMUP_ITERS 50" in script and cfg.SOLVER.WARMUP_ITERS == 50
    # the Sampling-Free config is the quickstart recipe plus Sampling-Free only (its proposals
    # counted per image, as every Sampling-Free config: about the same number per image)
    sf = shapes_cfg(QUICKSTART_SF)
    per_image = ("FPN_POST_NMS_PER_BATCH", "FPN_POST_NMS_TOP_N_TRAIN")
    assert sf.SOLVER == cfg.SOLVER and sf.MODEL.RESNETS == cfg.MODEL.RESNETS
    assert {k: v for k, v in sf.MODEL.RPN.items() if k not in per_image} == \
        {k: v for k, v in cfg.MODEL.RPN.items() if k not in per_image}
    assert not sf.MODEL.RPN.FPN_POST_NMS_PER_BATCH
    assert abs(sf.MODEL.RPN.FPN_POST_NMS_TOP_N_TRAIN * cfg.SOLVER.IMS_PER_BATCH - cfg.MODEL.RPN.FPN_POST_NMS_TOP_N_TRAIN) <= 8
    assert not sf.MODEL.SAMPLING_FREE.ROI.SAMPLER and not sf.MODEL.SAMPLING_FREE.RPN.SAMPLER
