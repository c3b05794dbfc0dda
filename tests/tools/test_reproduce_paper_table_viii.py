"""tools/reproduce_paper.py --tables VIII: which runs it makes, what it applies to each, the table
of gains it writes (with the paper's column and the findings) and the section it puts into a
results file."""
import os
import sys

import pytest

from maskrcnn_benchmark.config import cfg

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import reproduce_paper as tool  # noqa: E402  (tools/ is not a package)

RUNS = tool.ablation_runs(["VIII"])


def test_table_viii_runs_every_method_of_both_detectors_from_its_shapes_yaml():
    assert [r[1] for r in RUNS] == ["retinanet_focal", "retinanet_ghm", "retinanet_sampling_free", "faster_rcnn_biased",
                                    "faster_rcnn_ohem", "faster_rcnn_iou_balanced", "faster_rcnn_isr",
                                    "faster_rcnn_sampling_free"]
    expected = {
        "retinanet_focal": ("focal", "all"), "retinanet_ghm": ("ghm_c", "all"), "retinanet_sampling_free": ("ce", "all"),
        "faster_rcnn_biased": ("ce", "biased"), "faster_rcnn_ohem": ("ce", "ohem"),
        "faster_rcnn_iou_balanced": ("ce", "iou_balanced"), "faster_rcnn_isr": ("isr_p", "isr_n"),
        "faster_rcnn_sampling_free": ("ce", "all"),
    }
    from maskrcnn_benchmark.modeling.sampling_free.settings import stage_settings

    for run in RUNS:
        table, name, _, config_file, ablation = run
        assert table == "VIII" and ablation is None
        merged = cfg.clone()
        merged.merge_from_file(os.path.join(ROOT, config_file))
        merged.merge_from_list(tool.table_overrides(run))
        assert merged.DATASETS.TRAIN == ("shapes_train",)
        stage = "ONE_STAGE" if name.startswith("retinanet") else "ROI"
        settings = stage_settings(merged, stage)
        assert (settings.soft, settings.hard) == expected[name], name
        if name.startswith("faster_rcnn"):  # the same RoI pool for all five
            assert merged.MODEL.RPN.FPN_POST_NMS_TOP_N_TRAIN == 256
            assert merged.MODEL.RPN.FPN_POST_NMS_PER_BATCH is False  # per image for all five
            assert merged.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE == 128
        else:
            assert tool.table_overrides(run) == []


def test_run_one_trains_the_yaml_itself_with_the_pool_override(tmp_path, monkeypatch):
    seen = {}

    class Completed:
        returncode, stdout, stderr = 0, "", ""

    def fake_run(command, cwd, capture_output, text, env):
        seen["command"] = command
        return Completed()

    monkeypatch.setattr(tool.subprocess, "run", fake_run)
    run = next(r for r in RUNS if r[1] == "faster_rcnn_isr")
    tool.run_one(run, 600, str(tmp_path), "python", seed=1, threads=1)
    command = seen["command"]
    assert command[command.index("--config-file") + 1].endswith("configs/shapes/faster_rcnn_R_18_FPN_shapes_isr.yaml")
    assert command[command.index("MODEL.RPN.FPN_POST_NMS_TOP_N_TRAIN") + 1] == "256"
    assert command[command.index("SOLVER.MAX_ITER") + 1] == "600"
    assert command[command.index("SOLVER.STEPS") + 1] == "(450,)"


def fake_results(aps):
    """Results as run_one returns them: ``aps`` maps run name -> per-seed AP (x100) or None (diverged)."""
    results = []
    for name, per_seed in aps.items():
        for seed, ap in enumerate(per_seed):
            results.append({"table": "VIII", "name": name, "seed": seed, "seconds": 100.0,
                            "ap": None if ap is None else ap / 100, "diverged_at": 50 if ap is None else None,
                            "history": []})
    return results


AGREEING = {
    "retinanet_focal": [20.0, 21.0], "retinanet_ghm": [21.5, 22.0], "retinanet_sampling_free": [24.0, 25.0],
    "faster_rcnn_biased": [30.0, 31.0], "faster_rcnn_ohem": [30.5, 31.5], "faster_rcnn_iou_balanced": [29.0, 30.0],
    "faster_rcnn_isr": [32.0, 33.0], "faster_rcnn_sampling_free": [35.0, 36.0],
}


def table_rows(report):
    return {cells[1].split(" (")[0]: cells for cells in
            ([c.strip() for c in line.strip("|").split("|")] for line in report.splitlines()
             if line.startswith("| RetinaNet") or line.startswith("| Faster R-CNN"))}


def test_the_table_gives_gains_over_each_baseline_beside_the_paper():
    report = tool.markdown_report(fake_results(AGREEING), RUNS, iters={"VIII": 600}, total_seconds=60.0)
    rows = table_rows(report)
    ghm = rows["GHM-C"]
    assert ghm[2] == "21.5 / 22.0" and ghm[3] == "21.8" and ghm[4] == "0.5"
    assert ghm[5] == "+1.2" and ghm[6] == "yes"  # 21.5 > 21.0: the seeds do not overlap
    assert ghm[7:10] == ["35.6 -> 35.8", "+0.2", "2 -> 1"]
    ohem = rows["OHEM"]
    assert ohem[5] == "+0.5" and ohem[6] == "no"  # 30.5 < 31.0: within the seed spread
    assert rows["ISR"][7:10] == ["36.4 -> 37.9", "+1.5", "2 -> 4"]
    assert rows["Sampling-Free"][9] == "2 -> 0"
    assert "600 iterations per run" in report
    findings = report.split("Findings")[1]
    assert "RetinaNet: agrees with the paper: Sampling-Free has the largest gain." in findings
    assert "Faster R-CNN: agrees with the paper" in findings
    # IoU-balanced lost AP where the paper gained some; OHEM's gain is not resolved
    assert "IoU-balanced sampling: gain -1.0 AP against the paper's +0.4" in findings
    assert "the seed spread is not smaller than the gap to the baseline for OHEM, IoU-balanced sampling" in findings


def test_findings_state_a_disagreement_on_the_best_method_and_one_seed_resolves_nothing():
    aps = dict(AGREEING, faster_rcnn_isr=[40.0, 41.0])
    findings = tool.markdown_report(fake_results(aps), RUNS, iters=600, total_seconds=1.0).split("Findings")[1]
    assert "Faster R-CNN: disagrees with the paper (Sampling-Free best): ISR (ISR-P + ISR-N) has the largest gain, +10.0 AP" \
        ", +5.0 AP over Sampling-Free." in findings  # 40 / 41 against 35 / 36: apart
    aps = dict(AGREEING, faster_rcnn_isr=[35.5, 37.0])
    findings = tool.markdown_report(fake_results(aps), RUNS, iters=600, total_seconds=1.0).split("Findings")[1]
    assert "ISR (ISR-P + ISR-N) has the largest gain, +5.8 AP, +0.8 AP over Sampling-Free (not resolved by the " \
        "seeds: its per-seed APs overlap Sampling-Free's)." in findings
    one_seed = {name: values[:1] for name, values in AGREEING.items()}
    report = tool.markdown_report(fake_results(one_seed), RUNS, iters=600, total_seconds=1.0)
    assert table_rows(report)["GHM-C"][6] == "1 of 1 seeds trained"


def test_a_method_that_lost_a_seed_or_never_ran_says_so_not_within_the_spread():
    aps = dict(AGREEING, retinanet_ghm=[0.0, None])
    del aps["faster_rcnn_ohem"]
    report = tool.markdown_report(fake_results(aps), RUNS, iters=600, total_seconds=1.0)
    rows, findings = table_rows(report), report.split("Findings")[1]
    assert rows["GHM-C"][6] == "1 of 2 seeds trained" and rows["OHEM"][6] == "not run"
    assert "GHM-C: gain" in findings and "(1 of 2 seeds trained)." in findings
    assert "within the seed spread" not in findings.split("GHM-C: gain")[1].split("\n")[0]


def test_a_diverged_seed_is_listed_not_averaged():
    aps = dict(AGREEING, retinanet_ghm=[None, 22.0])
    rows = table_rows(tool.markdown_report(fake_results(aps), RUNS, iters=600, total_seconds=1.0))
    assert rows["GHM-C"][2] == "n/a (diverged at iter 50) / 22.0" and rows["GHM-C"][3] == "22.0"


def test_the_results_section_replaces_its_previous_version_and_keeps_the_rest(tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text("# Measured results\n\nkept text\n")
    tool.write_results_section(str(path), fake_results(AGREEING), 600, [0, 1], 3000.0)
    first = path.read_text()
    assert first.startswith("# Measured results\n\nkept text\n")
    assert "--tables VIII --seeds 0 1 --iters 600" in first and "| RetinaNet | GHM-C" in first
    aps = dict(AGREEING, retinanet_ghm=[10.0, 11.0])
    path.write_text(first + "\nafter\n")
    tool.write_results_section(str(path), fake_results(aps), 600, [0, 1], 3000.0)
    second = path.read_text()
    assert second.count(tool.RESULTS_BEGIN) == 1 and second.endswith("\nafter\n")
    assert "| 10.0 / 11.0 |" in second and "| 21.5 / 22.0 |" not in second


def test_results_md_needs_table_viii():
    with pytest.raises(SystemExit):
        tool.main(["--tables", "IIa", "--results-md", "x.md", "--dry-run"])


def finished_folder(out_root, run_id, max_iter, log_text, ap=None):
    """What a finished run leaves in ``out_root``: its folder (config.yml, the evaluation's
    metrics.json when it reached one) and its .log."""
    folder = out_root / run_id
    (folder / "inference" / "shapes_val").mkdir(parents=True)
    (folder / "config.yml").write_text(f"SOLVER:\n  MAX_ITER: {max_iter}\n")
    if ap is not None:
        (folder / "inference" / "shapes_val" / "metrics.json").write_text(
            '{"results": {"bbox": {"AP": %f}}}' % ap)
    (out_root / f"{run_id}.log").write_text(log_text)


def test_reuse_reads_finished_runs_and_trains_only_the_rest(tmp_path, monkeypatch):
    focal, ghm = RUNS[0], RUNS[1]
    finished_folder(tmp_path, "retinanet_focal_seed0", 600, "trained", ap=0.263)
    finished_folder(tmp_path, "retinanet_ghm_seed0", 600, "non-finite loss at iteration 128: total=nan")
    finished_folder(tmp_path, "retinanet_focal_seed1", 300, "trained", ap=0.2)  # another schedule
    finished_folder(tmp_path, "retinanet_ghm_seed1", 600, "Traceback: killed")  # no AP, no divergence

    assert tool.finished_run(focal, 600, str(tmp_path), seed=0)["ap"] == pytest.approx(0.263)
    assert tool.finished_run(ghm, 600, str(tmp_path), seed=0)["diverged_at"] == 128
    assert tool.finished_run(focal, 600, str(tmp_path), seed=1) is None
    assert tool.finished_run(ghm, 600, str(tmp_path), seed=1) is None
    assert tool.finished_run(RUNS[2], 600, str(tmp_path), seed=0) is None  # never ran

    trained = []

    def fake_run_one(run, iters, out_root, python, seed=None, threads=None):
        trained.append((run[1], seed))
        return tool._result(run, seed, 1.0, os.path.join(out_root, tool._run_id(run, seed)), None)

    monkeypatch.setattr(tool, "run_one", fake_run_one)
    monkeypatch.setattr(tool, "plot_curves", lambda results, out_root: [])
    tool.main(["--tables", "VIII", "--only", "retinanet_focal", "retinanet_ghm", "--seeds", "0", "1",
               "--out", str(tmp_path), "--reuse"])
    assert sorted(trained) == [("retinanet_focal", 1), ("retinanet_ghm", 1)]
