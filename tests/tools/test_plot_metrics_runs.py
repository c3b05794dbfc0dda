"""tools/plot_metrics.py with several runs: learning rate, validation AP and final evaluations."""
import json
import os
import sys

import cv2
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import plot_metrics  # noqa: E402


def write_run(folder, records, final=None):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "metrics.json"), "w") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in records)
    if final is not None:
        os.makedirs(os.path.join(folder, "inference", "shapes_val"))
        with open(os.path.join(folder, "inference", "shapes_val", "metrics.json"), "w") as handle:
            json.dump({"results": {"bbox": final}, "per_class_ap": {}}, handle)
    return str(folder)


def training_records(lr, ap, with_sampling_free=False):
    records = []
    for iteration in (10, 20, 30):
        record = {"iteration": iteration, "loss_objectness": 1.0 / iteration, "loss_rpn_box_reg": 0.1,
                  "loss_classifier": 2.0 / iteration, "loss_box_reg": 0.2, "lr": lr * iteration / 30}
        if with_sampling_free:
            record.update(sf_rpn_g=0.3, sf_roi_g=0.6, sf_rpn_delta=1.0)
        records.append(record)
    records.append({"iteration": 30, "val/bbox/AP": ap, "val/bbox/AP50": ap + 0.2, "val/bbox/APs": 0.01})
    return records


@pytest.fixture
def two_runs(tmp_path):
    baseline = write_run(tmp_path / "baseline", training_records(0.01, 0.20), {"AP": 0.25, "AP50": 0.5, "AP75": 0.2})
    free = write_run(tmp_path / "sampling_free", training_records(0.02, 0.30, True), {"AP": 0.35, "AP50": 0.6})
    return baseline, free


def test_panels_include_learning_rate_and_validation_ap(two_runs):
    run = plot_metrics.Run(two_runs[0])
    panels = dict(plot_metrics.panels_for(run.records))
    assert panels["learning rate"] == [("lr", "lr")]
    # AP and AP50 only (APs and the like would crowd the panel), from the "val/..." records
    assert [key for _, key in panels["validation AP"]] == ["val/bbox/AP", "val/bbox/AP50"]
    assert run.final == {"shapes_val bbox/AP": 0.25, "shapes_val bbox/AP50": 0.5}
    assert run.label == "baseline" and run.last_iteration == 30


def test_two_runs_on_one_figure_with_labelled_axes(two_runs, tmp_path, monkeypatch):
    drawn = {}
    original = plot_metrics.plt.Figure.savefig

    def capture(figure, *args, **kwargs):
        drawn["axes"] = figure.axes
        return original(figure, *args, **kwargs)

    monkeypatch.setattr(plot_metrics.plt.Figure, "savefig", capture)
    png = str(tmp_path / "compare.png")
    plot_metrics.main([*two_runs, "--labels", "baseline,SF", "--output", png])

    titles = [axis.get_title() for axis in drawn["axes"]]
    # the union of both runs' panels: the SF diagnostics exist in one run only
    assert titles == ["RPN", "RoI box head", "guidance ratio g = L_loc / L_cls", "learned delta",
                      "learning rate", "validation AP"]
    for axis in drawn["axes"]:
        assert axis.get_xlabel() == "iteration" and axis.get_ylabel()
    lr_axis = drawn["axes"][titles.index("learning rate")]
    assert {line.get_label() for line in lr_axis.get_lines()} == {"baseline: lr", "SF: lr"}
    assert max(lr_axis.get_lines()[1].get_ydata()) == pytest.approx(0.02)
    ap_axis = drawn["axes"][titles.index("validation AP")]
    labels = {line.get_label() for line in ap_axis.get_lines()}
    assert {"baseline: bbox/AP", "SF: bbox/AP50", "baseline: final shapes_val bbox/AP 0.250",
            "SF: final shapes_val bbox/AP 0.350"} <= labels
    # the two runs have different colours
    rpn_colours = {line.get_color() for line in drawn["axes"][0].get_lines()}
    assert len(rpn_colours) == 2
    image = cv2.imread(png)
    assert image is not None and image.shape[0] > image.shape[1]


def test_summary_line_per_run(two_runs, capsys):
    plot_metrics.main([*two_runs, "--output", os.path.join(os.path.dirname(two_runs[0]), "x.png")])
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "baseline: 30 iterations, shapes_val bbox/AP 0.250, shapes_val bbox/AP50 0.500"
    assert out[1].startswith("sampling_free: 30 iterations, shapes_val bbox/AP 0.350")


def test_bad_arguments_are_named(two_runs, tmp_path):
    with pytest.raises(SystemExit):
        plot_metrics.main([two_runs[0], str(tmp_path / "missing")])
    with pytest.raises(SystemExit):
        plot_metrics.main([*two_runs, "--labels", "only-one"])
    broken = tmp_path / "broken"
    write_run(broken, [{"iteration": 1, "loss": 1.0}])
    os.makedirs(broken / "inference" / "x")
    (broken / "inference" / "x" / "metrics.json").write_text("{}")
    with pytest.raises(ValueError, match=r"inference/x/metrics.json"):
        plot_metrics.Run(str(broken))
