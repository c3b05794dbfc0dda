"""tools/plot_metrics.py --delta-dynamics: delta beside 1 / L_loc (the fixed point of eq. 23's
dL/d delta = L_loc - 1 / delta), g and the losses, per stage that learns delta."""
import json
import math
import os
import sys

import cv2
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import plot_metrics  # noqa: E402


def write_metrics(folder, records):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "metrics.json"), "w") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in records)
    return str(folder)


def guided_records():
    """delta moving towards 1 / L_loc as SGD on eq. 23 moves it, L_cls = 4 L_loc."""
    records, delta = [], 1.0
    for iteration in range(0, 50, 5):
        loc = 0.5 + 0.5 / (1 + iteration)
        cls = 4 * loc
        records.append({"iteration": iteration, "loss": loc + 1.0, "sf_retina_loc": loc, "sf_retina_cls": cls,
                        "sf_retina_g": loc / cls, "sf_retina_delta": delta, "sf_retina_cls_grad_norm": 0.1})
        delta -= 0.1 * 5 * (loc - 1 / delta)
    records.append({"iteration": 50, "val/bbox/AP": 0.1})  # a record without the diagnostics
    return records


def test_series_put_delta_beside_its_fixed_point_and_the_scaled_term(tmp_path):
    run = plot_metrics.Run(write_metrics(tmp_path / "run", guided_records()))
    series = plot_metrics.delta_dynamics_series(run.records)
    assert list(series) == ["retina"]
    lines = series["retina"]
    iterations = list(range(0, 50, 5))
    for name in ("delta", "1 / L_loc", "g", "L_loc", "L_cls", "g * delta * L_cls"):
        assert lines[name][0] == iterations, name
    loc, delta = lines["L_loc"][1], lines["delta"][1]
    assert lines["1 / L_loc"][1] == pytest.approx([1 / v for v in loc])
    assert lines["g"][1] == pytest.approx([0.25] * len(iterations))
    # g * delta * L_cls = delta * L_loc (g * L_cls = L_loc)
    assert lines["g * delta * L_cls"][1] == pytest.approx([d * v for d, v in zip(delta, loc)])


def test_figure_has_the_three_panels_and_fits_the_results_page(tmp_path):
    folder = write_metrics(tmp_path / "run", guided_records())
    figure = plot_metrics.delta_dynamics_figure(plot_metrics.Run(folder))
    titles = [axis.get_title() for axis in figure.axes]
    assert titles == ["retina: delta and 1 / L_loc (its fixed point)", "retina: guidance ratio g = L_loc / L_cls",
                      "retina: losses"]
    first = figure.axes[0]
    assert [line.get_label() for line in first.get_lines()] == ["delta", "1 / L_loc"]
    assert first.get_lines()[1].get_ydata()[0] == pytest.approx(1 / 1.0)  # L_loc = 1 at iteration 0
    assert figure.axes[2].get_yscale() == "log"
    plot_metrics.plt.close(figure)
    png = str(tmp_path / "delta.png")
    plot_metrics.main([folder, "--delta-dynamics", "--output", png])
    image = cv2.imread(png)
    assert image is not None and os.path.getsize(png) < 300_000
    # without --output it lands beside the metrics
    plot_metrics.main([folder, "--delta-dynamics"])
    assert os.path.isfile(os.path.join(folder, "delta_dynamics.png"))


def test_a_zero_localisation_loss_gives_no_fixed_point_rather_than_an_error(tmp_path):
    records = guided_records()
    records[3]["sf_retina_loc"] = 0.0
    series = plot_metrics.delta_dynamics_series(plot_metrics.Run(write_metrics(tmp_path / "r", records)).records)
    assert math.isnan(series["retina"]["1 / L_loc"][1][3])


def test_runs_without_delta_and_bad_arguments_are_named(tmp_path):
    no_delta = write_metrics(tmp_path / "ratio", [{"iteration": 1, "sf_retina_g": 0.2, "sf_retina_loc": 1.0}])
    with pytest.raises(ValueError, match="no sf_<stage>_delta"):
        plot_metrics.main([no_delta, "--delta-dynamics", "--output", str(tmp_path / "x.png")])
    partial = write_metrics(tmp_path / "partial", [{"iteration": 1, "sf_rpn_delta": 1.0, "sf_rpn_g": 0.2}])
    with pytest.raises(ValueError, match=r"'rpn'.*sf_rpn_cls"):
        plot_metrics.main([partial, "--delta-dynamics", "--output", str(tmp_path / "y.png")])
    with pytest.raises(SystemExit):
        plot_metrics.main([no_delta, partial, "--delta-dynamics"])
