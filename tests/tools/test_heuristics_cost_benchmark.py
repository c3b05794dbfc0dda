"""benchmarks/heuristics_cost.py at a tiny size: every method of Table VIII is built from its own
yaml, measured in the same rounds as its baseline, and its ratios are its numbers over the
baseline's (no timing is asserted)."""
import importlib
import math
import os
import sys

import pytest
import torch

from maskrcnn_benchmark.modeling.sampling_free.settings import stage_settings

BENCHMARKS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                              "benchmarks")
sys.path.insert(0, BENCHMARKS_DIR)

common = importlib.import_module("common")
heuristics_cost = importlib.import_module("heuristics_cost")

TINY = dict(device="cpu", image_size=64, batch=1, iters=1, warmup=0, rpn_pre_nms_top_n_train=100,
            rpn_post_nms_top_n_train=60, rpn_pre_nms_top_n_test=50, rpn_post_nms_top_n_test=20,
            rpn_batch_size_per_image=32, roi_batch_size_per_image=16)
STRATEGIES = {  # (stage, hard, soft) each method's config gives
    "biased sampling (baseline)": ("ROI", "biased", "ce"),
    "OHEM": ("ROI", "ohem", "ce"),
    "IoU-balanced sampling": ("ROI", "iou_balanced", "ce"),
    "ISR (ISR-N + ISR-P)": ("ROI", "isr_n", "isr_p"),
    "ISR, no negative ranked": ("ROI", "isr_n", "isr_p"),
    "Sampling-Free": (None, "all", "ce"),
    "focal loss (baseline)": ("ONE_STAGE", "all", "focal"),
    "GHM-C": ("ONE_STAGE", "all", "ghm_c"),
}


@pytest.mark.parametrize("name", ["faster_rcnn", "retinanet"])
def test_each_method_is_built_from_its_yaml_with_the_shared_settings(name):
    settings = common.BenchSettings(**TINY).validate()
    for label, variant, options in heuristics_cost.METHODS[name]:
        cfg = common.our_config(name, settings, variant=variant, options=options)
        stage, hard, soft = STRATEGIES[label]
        stage = stage or ("ROI" if name == "faster_rcnn" else "ONE_STAGE")
        built = stage_settings(cfg, stage)
        assert (built.hard, built.soft) == (hard, soft), label
        if name == "faster_rcnn":
            assert cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE == 16 and cfg.MODEL.RPN.NMS_THRESH == 1.0
        if label == "ISR, no negative ranked":
            assert dict(built.hard_options)["SCORE_THRESH"] == 1.0


@pytest.mark.slow
def test_every_method_is_measured_against_its_baseline_in_the_same_rounds():
    torch.set_num_threads(1)
    settings = common.BenchSettings(**TINY).validate()
    rows = []
    for name in ("faster_rcnn", "retinanet"):
        rows.extend(heuristics_cost.measure_detector(name, settings, repeats=2))
    assert [row["method"] for row in rows] == [label for name in ("faster_rcnn", "retinanet")
                                               for label, _, _ in heuristics_cost.METHODS[name]]
    baselines = {}
    for row in rows:
        assert len(row["rounds"]) == 2
        baselines.setdefault(row["model"], row)
        base = baselines[row["model"]]
        for measured, base_measured, time_ratio, memory_ratio in zip(
                row["rounds"], base["rounds"], row["time_ratios"], row["memory_ratios"]):
            for key in ("step_ms", "peak_mib"):
                assert measured[key] is not None and math.isfinite(measured[key]) and measured[key] > 0
            assert math.isfinite(measured["final_loss"])
            assert time_ratio == pytest.approx(measured["step_ms"] / base_measured["step_ms"])
            assert memory_ratio == pytest.approx(measured["peak_mib"] / base_measured["peak_mib"])
    assert all(r == 1.0 for row in baselines.values() for r in row["time_ratios"] + row["memory_ratios"])
    table = heuristics_cost.cost_table(rows)
    assert table.count("\n") == len(rows) + 1 and "| Faster R-CNN R-50-FPN | OHEM |" in table


def test_an_unknown_detector_or_repeat_count_is_refused():
    with pytest.raises(SystemExit):
        heuristics_cost.main(["--models", "mask_rcnn"])
    with pytest.raises(SystemExit):
        heuristics_cost.main(["--repeats", "0"])
