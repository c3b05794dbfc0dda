#!/usr/bin/env python
"""The foreground-background imbalance of a config on its training data, per detector stage and
pyramid level: N, N^f, the foreground fraction, the optimal bias and the initial classification
loss it gives (and the one the default bias gives), as a table and a plot.

    python tools/imbalance_report.py --config-file CONFIG --output-dir DIR [--images N] [KEY VALUE ...]

Every Sampling-Free head of the detector is counted (whatever its BIAS_INIT), with the code the
optimal bias uses at the start of training: the same seeded choice of MODEL.SAMPLING_FREE.SAMPLE_IMAGES
training images (or --images), the training transforms seeded per image, each head's own
assignment on its own anchors / points / initial proposals, no network forward. Writes
``imbalance.md`` (the table), ``imbalance.json`` (the rows) and ``imbalance.png`` (N^f / N per
level, log scale) under DIR, and prints the table.
"""
import argparse
import json
import math
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import torch  # noqa: E402

from maskrcnn_benchmark.config.paths_catalog import DatasetCatalog  # noqa: E402
from maskrcnn_benchmark.data.build import build_dataset  # noqa: E402
from maskrcnn_benchmark.data.transforms import build_transforms  # noqa: E402
from maskrcnn_benchmark.engine.launch import load_config  # noqa: E402
from maskrcnn_benchmark.modeling.detector import build_detection_model  # noqa: E402
from maskrcnn_benchmark.modeling.sampling_free.bias_init import load_targets, sample_indices  # noqa: E402
from maskrcnn_benchmark.modeling.sampling_free.imbalance import ALL_LEVELS, imbalance_rows, markdown_table  # noqa: E402


def plot(rows, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    heads = list(dict.fromkeys(r.head for r in rows))
    fig, axes = plt.subplots(1, len(heads), figsize=(max(6.5, 4.5 * len(heads)), 3.8), squeeze=False)
    for axis, head in zip(axes[0], heads):
        mine = [r for r in rows if r.head == head]
        labels = [r.level for r in mine]
        values = [r.fraction if r.fraction > 0 else float("nan") for r in mine]
        colours = ["tab:gray" if r.level == ALL_LEVELS else "tab:blue" for r in mine]
        axis.bar(range(len(mine)), values, color=colours)
        axis.set_yscale("log")
        axis.set_xticks(range(len(mine)))
        axis.set_xticklabels(labels, rotation=45, ha="right", fontsize=8)
        axis.set_title(f"{head}: N^f / N", fontsize=10)
        for x, r in enumerate(mine):
            if not math.isnan(r.optimal_bias):
                axis.annotate(f"b*={r.optimal_bias:.1f}", (x, values[x]), ha="center", va="bottom", fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(cfg, num_images=None):
    """``(rows, images counted)`` for the frozen config ``cfg`` (see the module docstring)."""
    dataset = build_dataset(list(cfg.DATASETS.TRAIN), build_transforms(cfg, is_train=True), DatasetCatalog, True)[0]
    num_images = int(cfg.MODEL.SAMPLING_FREE.SAMPLE_IMAGES if num_images is None else num_images)
    indices = sample_indices(len(dataset), num_images, cfg.SEED)
    targets, _ = load_targets(dataset, indices, seed=cfg.SEED)
    model = build_detection_model(cfg)
    return imbalance_rows(model, targets), len(indices)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Foreground-background imbalance per stage and pyramid level")
    parser.add_argument("--config-file", required=True, metavar="FILE")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--images", type=int, default=None,
                        help="training images to count (default MODEL.SAMPLING_FREE.SAMPLE_IMAGES)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, default=[], help="config overrides KEY VALUE")
    args = parser.parse_args(argv)

    cfg = load_config(args.config_file, ["MODEL.DEVICE", "cpu"] + list(args.opts))
    with torch.no_grad():  # not set_grad_enabled: main() is also called in-process (tests)
        rows, counted = report(cfg, args.images)
    title = f"{os.path.basename(args.config_file)} on {', '.join(cfg.DATASETS.TRAIN)} ({counted} images)"
    table = markdown_table(rows)
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, "imbalance.md"), "w") as handle:
        handle.write(f"{title}\n\n{table}\n")
    with open(os.path.join(args.output_dir, "imbalance.json"), "w") as handle:
        json.dump({"config": args.config_file, "datasets": list(cfg.DATASETS.TRAIN), "images": counted,
                   "rows": [r.as_dict() for r in rows]}, handle, indent=1)
    plot(rows, os.path.join(args.output_dir, "imbalance.png"), title)
    print(title)
    print(table)
    return rows


if __name__ == "__main__":
    main()
