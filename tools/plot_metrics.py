#!/usr/bin/env python
"""Training curves of one or several runs on one figure, as in the paper's Figs. 2-3.

    python tools/plot_metrics.py OUTPUT_DIR [OUTPUT_DIR ...] [--labels baseline,sampling-free] [--output curves.png]

Each run is an OUTPUT_DIR (or its metrics.json, one json object per line as tools/train_net.py
writes it). Panels, for what the runs logged: per detector stage the classification and
localisation losses; the Sampling-Free diagnostics (``sf_<stage>_g``, ``sf_<stage>_delta``,
``sf_<stage>_cls_grad_norm``, a line per stage); the learning rate; validation AP (the ``val/...``
records of SOLVER.TEST_PERIOD, and the final evaluation of OUTPUT_DIR/inference/<dataset>/metrics.json
as markers at the run's last iteration). Runs differ by colour, the lines of one run by style.

    python tools/plot_metrics.py OUTPUT_DIR --delta-dynamics [--output delta.png]

draws instead, for one run, the guided loss scaling of each stage that learns delta (eq. 23): delta
beside 1 / L_loc, where dL/d delta = L_loc - 1 / delta vanishes; g = L_loc / L_cls; and L_loc, L_cls
and the scaled classification term g * delta * L_cls (= delta * L_loc), which delta drives to 1.
"""
import argparse
import glob
import json
import os
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# (panel title, classification key, localisation key) in maskrcnn-benchmark's loss names
STAGES = (
    ("RPN", "loss_objectness", "loss_rpn_box_reg"),
    ("RoI box head", "loss_classifier", "loss_box_reg"),
    ("RetinaNet", "loss_retina_cls", "loss_retina_reg"),
    ("one-stage head (FCOS / ATSS / PAA)", "loss_cls", "loss_reg"),
)
SAMPLING_FREE_DIAGNOSTICS = (
    ("g", "guidance ratio g = L_loc / L_cls"),
    ("delta", "learned delta"),
    ("cls_grad_norm", "classification-layer gradient norm"),
)
LEARNING_RATE = "learning rate"
VALIDATION_AP = "validation AP"
AP_METRICS = ("AP", "AP50")
LOSS_TITLES = {title for title, _, _ in STAGES} | {"total loss"}
Y_LABELS = {LEARNING_RATE: "learning rate", VALIDATION_AP: "COCO box / mask AP"}
LINE_STYLES = ("-", "--", ":", "-.")


def load_metrics(path):
    """Records sorted by iteration; when a resumed run logged an iteration twice, the last wins."""
    by_iteration = {}
    with open(path) as handle:
        for line_number, line in enumerate(handle, 1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{line_number}: not a json object ({err.msg})") from err
            if "iteration" not in record:
                raise ValueError(f"{path}:{line_number}: record has no 'iteration' key")
            by_iteration[record["iteration"]] = {**by_iteration.get(record["iteration"], {}), **record}
    if not by_iteration:
        raise ValueError(f"{path}: no metrics recorded")
    return [by_iteration[i] for i in sorted(by_iteration)]


def load_final_evaluations(output_dir):
    """``{"<dataset> <iou type>/<metric>": value}`` from OUTPUT_DIR/inference/*/metrics.json."""
    final = {}
    for path in sorted(glob.glob(os.path.join(output_dir, "inference", "*", "metrics.json"))):
        dataset = os.path.basename(os.path.dirname(path))
        with open(path) as handle:
            try:
                results = json.load(handle)["results"]
            except (json.JSONDecodeError, KeyError) as err:
                raise ValueError(f"{path}: not an evaluation metrics file ({err})") from err
        for iou_type, metrics in results.items():
            for metric in AP_METRICS:
                if metric in metrics:
                    final[f"{dataset} {iou_type}/{metric}"] = metrics[metric]
    return final


class Run:
    """One training run: its metrics.json records and its final evaluations."""

    def __init__(self, path, label=None):
        metrics = os.path.join(path, "metrics.json") if os.path.isdir(path) else path
        if not os.path.isfile(metrics):
            raise FileNotFoundError(f"metrics file not found: {metrics}")
        self.records = load_metrics(metrics)
        self.output_dir = os.path.dirname(os.path.abspath(metrics))
        self.label = label or os.path.basename(self.output_dir)
        self.final = load_final_evaluations(self.output_dir)

    @property
    def last_iteration(self):
        return self.records[-1]["iteration"]


def _series(records, key):
    points = [(r["iteration"], r[key]) for r in records if key in r and r[key] is not None]
    return [p[0] for p in points], [p[1] for p in points]


def panels_for(records):
    """[(title, [(label, key), ...]), ...] for what the records contain."""
    keys = set().union(*records)
    panels = []
    for title, cls_key, loc_key in STAGES:
        lines = [(f"classification ({k})" if k == cls_key else f"localisation ({k})", k)
                 for k in (cls_key, loc_key) if k in keys]
        if lines:
            panels.append((title, lines))
    for suffix, title in SAMPLING_FREE_DIAGNOSTICS:
        pattern = re.compile(rf"^sf_(.+)_{suffix}$")
        lines = sorted((m.group(1), k) for k in keys for m in [pattern.match(k)] if m)
        if lines:
            panels.append((title, lines))
    if not panels:
        panels.append(("total loss", [("loss", "loss")] if "loss" in keys else []))
    if "lr" in keys:
        panels.append((LEARNING_RATE, [("lr", "lr")]))
    validation = sorted(k for k in keys if k.startswith("val/") and k.rsplit("/", 1)[-1] in AP_METRICS)
    if validation:
        panels.append((VALIDATION_AP, [(k[len("val/"):], k) for k in validation]))
    return panels


def _merge_panels(runs):
    """The panels for what any of the runs logged, in the single-run order."""
    panels = panels_for([record for run in runs for record in run.records])
    if any(run.final for run in runs) and VALIDATION_AP not in dict(panels):
        panels.append((VALIDATION_AP, []))
    return panels


def plot_runs(runs, output_path):
    panels = _merge_panels(runs)
    # one iteration axis for all panels, so that curves and final evaluations line up
    figure, axes = plt.subplots(len(panels), 1, figsize=(8, 2.9 * len(panels)), squeeze=False, sharex=True)
    several = len(runs) > 1
    for axis, (title, lines) in zip(axes[:, 0], panels):
        for index, run in enumerate(runs):
            color = f"C{index % 10}"
            for style, (label, key) in zip(LINE_STYLES * 4, lines):
                iterations, values = _series(run.records, key)
                if iterations:
                    axis.plot(iterations, values, style, color=color,
                              marker="o" if len(iterations) < 10 else None, markersize=3,
                              label=f"{run.label}: {label}" if several else label)
            if title == VALIDATION_AP:
                for name, value in sorted(run.final.items()):
                    axis.plot([run.last_iteration], [value], "*" if name.endswith("/AP") else "^",
                              color=color, markersize=10, linestyle="none",
                              label=f"{run.label}: final {name} {value:.3f}")
        axis.set_title(title)
        axis.set_xlabel("iteration")
        axis.set_ylabel(Y_LABELS.get(title, "loss" if title in LOSS_TITLES else "value"))
        axis.grid(True, alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(output_path, dpi=100)
    plt.close(figure)
    return output_path


def delta_dynamics_series(records):
    """``{stage: {name: (iterations, values)}}`` for every stage that logged ``sf_<stage>_delta``:
    "delta", "1 / L_loc", "g", "L_loc", "L_cls" and "g * delta * L_cls" (computed as delta * L_loc,
    since g * L_cls = L_loc), at the iterations where the stage logged all four of
    ``sf_<stage>_{delta,g,loc,cls}``."""
    keys = set().union(*records)
    stages = sorted(m.group(1) for k in keys for m in [re.match(r"^sf_(.+)_delta$", k)] if m)
    series = {}
    for stage in stages:
        names = {part: f"sf_{stage}_{part}" for part in ("delta", "g", "loc", "cls")}
        rows = [r for r in records if all(r.get(k) is not None for k in names.values())]
        if not rows:
            raise ValueError(f"stage {stage!r} logged {names['delta']} but never all of {sorted(names.values())}")
        iterations = [r["iteration"] for r in rows]
        value = {part: [r[k] for r in rows] for part, k in names.items()}
        series[stage] = {
            "delta": (iterations, value["delta"]),
            "1 / L_loc": (iterations, [1.0 / loc if loc > 0 else float("nan") for loc in value["loc"]]),
            "g": (iterations, value["g"]),
            "L_loc": (iterations, value["loc"]),
            "L_cls": (iterations, value["cls"]),
            "g * delta * L_cls": (iterations, [d * loc for d, loc in zip(value["delta"], value["loc"])]),
        }
    return series


# (panel title, the series drawn on it, log scale)
DELTA_PANELS = (
    ("delta and 1 / L_loc (its fixed point)", ("delta", "1 / L_loc"), False),
    ("guidance ratio g = L_loc / L_cls", ("g",), False),
    ("losses", ("L_loc", "L_cls", "g * delta * L_cls"), True),
)


def delta_dynamics_figure(run):
    """One run's delta dynamics (``delta_dynamics_series``): a column of panels per stage."""
    series = delta_dynamics_series(run.records)
    if not series:
        raise ValueError(f"{run.output_dir}: no sf_<stage>_delta logged (GUIDED: guided trains delta)")
    figure, axes = plt.subplots(len(DELTA_PANELS), len(series), figsize=(6.5 * len(series), 2.6 * len(DELTA_PANELS)),
                                squeeze=False, sharex=True)
    for column, (stage, lines) in enumerate(series.items()):
        for axis, (title, names, log_scale) in zip(axes[:, column], DELTA_PANELS):
            for style, name in zip(LINE_STYLES, names):
                axis.plot(*lines[name], style, label=name)
            if log_scale:
                axis.set_yscale("log")
            axis.set_title(f"{stage}: {title}", fontsize=10)
            axis.set_xlabel("iteration")
            axis.grid(True, alpha=0.3)
            axis.legend(fontsize="small")
    figure.tight_layout()
    return figure


def plot_delta_dynamics(run, output_path):
    figure = delta_dynamics_figure(run)
    figure.savefig(output_path, dpi=90)
    plt.close(figure)
    return output_path


def plot_metrics(metrics_path, output_path):
    """One run's curves (kept for callers of the single-run form)."""
    return plot_runs([Run(metrics_path)], output_path)


def summary(runs):
    """A line per run: its last iteration and final evaluation."""
    lines = []
    for run in runs:
        final = ", ".join(f"{name} {value:.3f}" for name, value in sorted(run.final.items())) or "no final evaluation"
        lines.append(f"{run.label}: {run.last_iteration} iterations, {final}")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="OUTPUT_DIRs or metrics.json files written by tools/train_net.py")
    parser.add_argument("--labels", default=None, help="comma-separated legend names, one per run (default: folder names)")
    parser.add_argument("--output", default=None,
                        help="PNG to write (default: loss_curves.png, with --delta-dynamics delta_dynamics.png, "
                             "beside the first run's metrics)")
    parser.add_argument("--delta-dynamics", action="store_true",
                        help="for one run: delta beside 1 / L_loc, g and the losses of each stage learning delta")
    args = parser.parse_args(argv)
    if args.delta_dynamics and len(args.runs) != 1:
        parser.error(f"--delta-dynamics draws one run, got {len(args.runs)}")
    labels = args.labels.split(",") if args.labels else [None] * len(args.runs)
    if len(labels) != len(args.runs):
        parser.error(f"--labels names {len(labels)} runs but {len(args.runs)} were given")
    try:
        runs = [Run(path, label) for path, label in zip(args.runs, labels)]
    except FileNotFoundError as err:
        parser.error(str(err))
    if args.delta_dynamics:
        print(plot_delta_dynamics(runs[0], args.output or os.path.join(runs[0].output_dir, "delta_dynamics.png")))
        return
    output = args.output or os.path.join(runs[0].output_dir, "loss_curves.png")
    for line in summary(runs):
        print(line)
    print(plot_runs(runs, output))


if __name__ == "__main__":
    sys.exit(main())
