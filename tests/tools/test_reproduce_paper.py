"""The small-scale reproduction runner: which runs it makes and what it applies to each."""
import importlib.util
import os

import pytest

from maskrcnn_benchmark.config import cfg

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _load_tool():
    spec = importlib.util.spec_from_file_location("reproduce_paper", os.path.join(ROOT, "tools", "reproduce_paper.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = _load_tool()


def test_runs_cover_the_paper_tables_with_existing_files():
    runs = tool.ablation_runs(["I", "IIa", "IIb", "IIc"])
    assert [r[0] for r in runs].count("I") == 16
    assert [r[0] for r in runs].count("IIa") == 6
    assert [r[0] for r in runs].count("IIb") == 6
    assert [r[0] for r in runs].count("IIc") == 8
    for _, _, _, base, ablation in runs:
        assert os.path.exists(os.path.join(ROOT, base)), base
        assert os.path.exists(os.path.join(ROOT, ablation)), ablation


@pytest.mark.parametrize("run", tool.ablation_runs(["I", "IIa", "IIb", "IIc"]), ids=lambda r: r[1])
def test_overrides_apply_exactly_the_ablation_switches_onto_the_shapes_config(run):
    _, name, _, base, ablation = run
    shapes = cfg.clone()
    shapes.merge_from_file(os.path.join(ROOT, base))
    merged = shapes.clone()
    merged.merge_from_list(tool.own_overrides(ablation))
    # the dataset, backbone and schedule stay the shapes ones
    assert merged.DATASETS.TRAIN == ("shapes_train",)
    assert merged.MODEL.BACKBONE.CONV_BODY == shapes.MODEL.BACKBONE.CONV_BODY
    # and the switches equal those of the full COCO ablation file
    coco = cfg.clone()
    coco.merge_from_file(os.path.join(ROOT, ablation))
    assert merged.MODEL.SAMPLING_FREE == coco.MODEL.SAMPLING_FREE
    if name.startswith("retinanet"):
        assert merged.MODEL.RETINANET.PRIOR_PROB == coco.MODEL.RETINANET.PRIOR_PROB


def test_every_faster_rcnn_column_of_table_two_c_trains_on_the_same_proposals_per_image():
    # The Sampling-Free yamls count 1000 proposals per image; the shapes baseline 1000 per batch
    # of 8. The table's own override puts every column on the same pool.
    pools = set()
    for run in tool.ablation_runs(["IIc"]):
        merged = cfg.clone()
        merged.merge_from_file(os.path.join(ROOT, run[3]))
        merged.merge_from_list(tool.own_overrides(run[4]) + tool.table_overrides(run))
        rpn = merged.MODEL.RPN
        per_image = rpn.FPN_POST_NMS_TOP_N_TRAIN / (merged.SOLVER.IMS_PER_BATCH if rpn.FPN_POST_NMS_PER_BATCH else 1)
        pools.add(per_image)
    assert pools == {256}
    assert all(tool.table_overrides(run) == [] for run in tool.ablation_runs(["I", "IIa", "IIb"]))


def test_table_one_report_marks_divergence_and_ap():
    runs = tool.ablation_runs(["I"])[:2]
    results = [
        {"table": "I", "name": runs[0][1], "seconds": 3.0, "ap": None, "diverged_at": 16, "history": []},
        {"table": "I", "name": runs[1][1], "seconds": 4.0, "ap": 0.4215, "diverged_at": None, "history": []},
    ]
    report = tool.markdown_report(results, runs, iters=10, total_seconds=7.0)
    first_row = next(line for line in report.splitlines() if line.startswith("| pi = 1e-2"))
    assert first_row.split("|")[2].strip() == "n/a (diverged at iter 16)"
    assert first_row.split("|")[3].strip() == "42.1"


def test_several_seeds_report_the_mean_and_every_seed():
    runs = tool.ablation_runs(["IIc"])[:1]
    name = runs[0][1]
    results = [
        {"table": "IIc", "name": name, "seed": 0, "seconds": 10.0, "ap": 0.10, "diverged_at": None, "history": []},
        {"table": "IIc", "name": name, "seed": 1, "seconds": 12.0, "ap": 0.14, "diverged_at": None, "history": []},
        {"table": "IIc", "name": name, "seed": 2, "seconds": 2.0, "ap": None, "diverged_at": 9, "history": []},
    ]
    report = tool.markdown_report(results, runs, iters=10, total_seconds=24.0)
    row = next(line for line in report.splitlines() if line.startswith("| " + runs[0][2]))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    # the diverged seed is listed, not averaged in
    assert cells[1] == "12.0 (10.0 / 14.0 / n/a (diverged at iter 9))"
    assert cells[2] == "8.0"
    assert "Seeds 0, 1, 2" in report


def test_run_one_passes_the_seed_and_thread_cap(tmp_path, monkeypatch):
    seen = {}

    class Completed:
        returncode = 0
        stdout = ""
        stderr = ""

    def fake_run(command, cwd, capture_output, text, env):
        seen["command"], seen["env"] = command, env
        return Completed()

    monkeypatch.setattr(tool.subprocess, "run", fake_run)
    run = tool.ablation_runs(["IIa"])[0]
    result = tool.run_one(run, 20, str(tmp_path), "python", seed=3, threads=1)
    command = seen["command"]
    assert command[command.index("SEED") + 1] == "3"
    assert command[command.index("OUTPUT_DIR") + 1] == os.path.join(str(tmp_path), run[1] + "_seed3")
    assert seen["env"]["OMP_NUM_THREADS"] == "1"
    assert result["seed"] == 3 and (tmp_path / (run[1] + "_seed3.log")).exists()
