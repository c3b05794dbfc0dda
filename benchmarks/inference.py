"""Inference throughput (images per second): ours vs torchvision on the same images.

Both models run in eval mode under ``torch.inference_mode()``, built as in ``train_step.py``
(same heads, classes, RPN top-n, score threshold and detections per image), and are timed in
alternation on one fixed synthetic batch.

    .venv/bin/python benchmarks/inference.py --device cpu --image-size 512 --batch 1 --iters 5
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (the benchmarks folder is not a package)


class Predict:
    """One inference call as a callable; remembers how many detections the last call returned."""

    def __init__(self, model, run_forward, count_detections):
        self.model = model.eval()
        self.run_forward = run_forward
        self.count_detections = count_detections
        self.last_detections = None

    def __call__(self):
        with torch.inference_mode():
            outputs = self.run_forward()
        self.last_detections = self.count_detections(outputs)


def our_predict(name, settings, batch):
    model, cfg = common.build_ours(name, settings)
    images = [image.to(settings.device) for image in batch.images]
    # Normalising and padding are part of the call, as torchvision's model does both itself.
    return Predict(model, lambda: model(common.our_inputs(images, cfg)), lambda out: sum(len(b) for b in out))


def torchvision_predict(name, settings, batch):
    model = common.build_torchvision(name, settings)
    images = [image.to(settings.device) for image in batch.images]
    return Predict(model, lambda: model(images), lambda out: sum(len(d["boxes"]) for d in out))


def benchmark_inference(settings, names):
    """One row per model: images per second for ours and torchvision's, and ours / theirs."""
    batch = common.make_batch(settings)
    rows = []
    for name in names:
        calls = {"ours": our_predict(name, settings, batch), "torchvision": torchvision_predict(name, settings, batch)}
        seconds = common.time_interleaved(calls, settings.iters, settings.warmup, settings.device)
        row = {"model": name}
        for label, call in calls.items():
            row[label] = {
                "images_per_s": settings.batch / seconds[label],
                "ms_per_batch": seconds[label] * 1000.0,
                "detections": call.last_detections,
            }
        row["throughput_ratio"] = common.ratio(row["ours"]["images_per_s"], row["torchvision"]["images_per_s"])
        del calls  # free both models before the next pair
        rows.append(row)
    return rows


HEADERS = [
    "model",
    "ours img/s",
    "torchvision img/s",
    "throughput ratio (target >= 1.0)",
    "ours detections",
    "torchvision detections",
]


def inference_table(rows):
    fmt = common.format_number
    return common.markdown_table(
        HEADERS,
        [
            [
                common.MODEL_TITLES[row["model"]],
                fmt(row["ours"]["images_per_s"], 2),
                fmt(row["torchvision"]["images_per_s"], 2),
                fmt(row["throughput_ratio"], 3),
                row["ours"]["detections"],
                row["torchvision"]["detections"],
            ]
            for row in rows
        ],
    )


def main(argv=None):
    args = common.make_parser(__doc__.splitlines()[0]).parse_args(argv)
    settings = common.settings_from_args(args)
    names = common.parse_model_names(args.models)

    return common.print_and_save(
        args, settings, "detections: boxes returned for the batch in the last timed call (random weights)",
        lambda: benchmark_inference(settings, names), inference_table, "inference")


if __name__ == "__main__":
    main()
