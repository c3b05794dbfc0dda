#!/usr/bin/env python
"""Loss curves from a training run's metrics.json, as in the paper's Figs. 2-3.

    python tools/plot_metrics.py OUTPUT_DIR/metrics.json [--output curves.png]

One panel per detector stage found in the file (classification vs localisation loss), then one
panel per Sampling-Free diagnostic (``sf_<stage>_g``, ``sf_<stage>_delta``,
``sf_<stage>_cls_grad_norm``) with a line per stage.
"""
import argparse
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


def _series(records, key):
    points = [(r["iteration"], r[key]) for r in records if key in r]
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
    return panels


def plot_metrics(metrics_path, output_path):
    records = load_metrics(metrics_path)
    panels = panels_for(records)
    figure, axes = plt.subplots(len(panels), 1, figsize=(7, 2.8 * len(panels)), squeeze=False)
    for axis, (title, lines) in zip(axes[:, 0], panels):
        for label, key in lines:
            axis.plot(*_series(records, key), label=label)
        axis.set_title(title)
        axis.set_xlabel("iteration")
        axis.grid(True, alpha=0.3)
        if lines:
            axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(output_path, dpi=100)
    plt.close(figure)
    return output_path


def main(argv=None):
    parser = argparse.ArgumentParser(description="Plot the loss curves of a metrics.json")
    parser.add_argument("metrics", help="metrics.json written by tools/train_net.py")
    parser.add_argument("--output", default=None, help="PNG to write (default: loss_curves.png beside the input)")
    args = parser.parse_args(argv)
    if not os.path.isfile(args.metrics):
        parser.error(f"metrics file not found: {args.metrics}")
    output = args.output or os.path.join(os.path.dirname(os.path.abspath(args.metrics)), "loss_curves.png")
    print(plot_metrics(args.metrics, output))


if __name__ == "__main__":
    sys.exit(main())
