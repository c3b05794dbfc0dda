"""Training-step time and peak memory: ours vs torchvision, and Sampling-Free vs biased sampling.

A step is the trainer's step (maskrcnn_benchmark.engine.trainer.SimpleTrainer.run_step: forward,
loss sum, non-finite check, backward, SGD update) on one fixed synthetic batch, for both sides.
Both models of a pair are built in the same process, get the same images and boxes, and are timed
in alternation.

    .venv/bin/python benchmarks/train_step.py --device cpu --image-size 512 --batch 1 --iters 5
"""
import itertools
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (the benchmarks folder is not a package)

from maskrcnn_benchmark.engine.trainer import SimpleTrainer, optimised_loss  # noqa: E402

# A learning rate of 0: torch.optim.SGD does not special-case it, so the update (weight decay,
# momentum, parameter add) costs what it always does, but the weights stay put. Every timed step
# then does the same work, and random-init training cannot diverge to NaN mid-benchmark (at 1e-3
# torchvision's Faster R-CNN did within eight steps).
LEARNING_RATE = 0.0
MOMENTUM = 0.9
WEIGHT_DECAY = 1e-4


def optimizer_for(model):
    """The same SGD for both sides (per-parameter learning-rate groups would not change the cost)."""
    return torch.optim.SGD(
        common.trainable_parameters(model), lr=LEARNING_RATE, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY
    )


class _LossNamesPrefixed(torch.nn.Module):
    """torchvision's RetinaNet names its losses "classification" / "bbox_regression"; the trainer
    optimises the entries whose name starts with "loss", so they are renamed (nothing else)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, images, targets):
        losses = self.model(images, targets)
        return {name if name.startswith("loss") else "loss_" + name: value for name, value in losses.items()}


class TrainStep:
    """One step of the project's trainer (``SimpleTrainer.run_step``: forward, the sum of the
    ``loss*`` terms, the non-finite check, backward, SGD update, gradients freed) as a callable, on
    ``batches`` (an endless iterable of ``(images, targets, _)``)."""

    def __init__(self, model, batches, device):
        self.model = model.train()
        self.trainer = SimpleTrainer(model, batches, optimizer_for(model), device)

    def __call__(self):
        self.trainer.run_step()

    @property
    def last_loss(self):
        return float(optimised_loss(self.trainer.last_loss_dict))


def our_train_step(name, settings, batch, sampling_free=False, variant=None, options=()):
    model, cfg = common.build_ours(name, settings, sampling_free=sampling_free, variant=variant, options=options)
    images = [image.to(settings.device) for image in batch.images]
    targets = common.our_targets(batch, name, settings.device)

    def batches():
        # Normalising and padding belong to the step, as torchvision's model does both itself.
        while True:
            yield common.our_inputs(images, cfg), targets, None

    return TrainStep(model, batches(), settings.device)


def torchvision_train_step(name, settings, batch):
    model = _LossNamesPrefixed(common.build_torchvision(name, settings))
    images = [image.to(settings.device) for image in batch.images]
    targets = common.torchvision_targets(batch, name, settings.device)
    return TrainStep(model, itertools.repeat((images, targets, None)), settings.device)


def measure_pair(steps, settings):
    """{label: {"step_ms", "peak_mib", "trainable_params", "final_loss"}} for ``{label: TrainStep}``."""
    seconds = common.time_interleaved(steps, settings.iters, settings.warmup, settings.device)
    results = {}
    for label, step in steps.items():
        peak = common.peak_memory_bytes(step, settings.device)
        results[label] = {
            "step_ms": seconds[label] * 1000.0,
            "peak_mib": common.mib(peak),
            "trainable_params": common.count_trainable(step.model),
            "final_loss": step.last_loss,
        }
    return results


def benchmark_vs_torchvision(settings, names):
    """One row per model: ours and torchvision's step time and peak memory, and the ratios."""
    batch = common.make_batch(settings)
    rows = []
    for name in names:
        steps = {
            "ours": our_train_step(name, settings, batch),
            "torchvision": torchvision_train_step(name, settings, batch),
        }
        measured = measure_pair(steps, settings)
        del steps  # free both models before the next pair
        rows.append(
            {
                "model": name,
                "ours": measured["ours"],
                "torchvision": measured["torchvision"],
                "time_ratio": common.ratio(measured["ours"]["step_ms"], measured["torchvision"]["step_ms"]),
                "memory_ratio": common.ratio(measured["ours"]["peak_mib"], measured["torchvision"]["peak_mib"]),
            }
        )
    return rows


def benchmark_sampling_free(settings):
    """Our Faster R-CNN with the biased samplers vs Sampling-Free (paper Table III)."""
    batch = common.make_batch(settings)
    steps = {
        "biased": our_train_step("faster_rcnn", settings, batch),
        "sampling_free": our_train_step("faster_rcnn", settings, batch, sampling_free=True),
    }
    measured = measure_pair(steps, settings)
    return {
        "model": "faster_rcnn",
        "biased": measured["biased"],
        "sampling_free": measured["sampling_free"],
        "time_ratio": common.ratio(measured["sampling_free"]["step_ms"], measured["biased"]["step_ms"]),
        "memory_ratio": common.ratio(measured["sampling_free"]["peak_mib"], measured["biased"]["peak_mib"]),
    }


VS_TORCHVISION_HEADERS = [
    "model",
    "ours ms/step",
    "torchvision ms/step",
    "time ratio (target <= 1.0)",
    "ours peak MiB",
    "torchvision peak MiB",
    "memory ratio",
]
SAMPLING_FREE_HEADERS = [
    "Faster R-CNN R-50-FPN",
    "biased ms/step",
    "Sampling-Free ms/step",
    "time ratio (target <= 1.05)",
    "biased peak MiB",
    "Sampling-Free peak MiB",
    "memory ratio (target <= 1.0)",
]


def vs_torchvision_table(rows):
    fmt = common.format_number
    return common.markdown_table(
        VS_TORCHVISION_HEADERS,
        [
            [
                common.MODEL_TITLES[row["model"]],
                fmt(row["ours"]["step_ms"]),
                fmt(row["torchvision"]["step_ms"]),
                fmt(row["time_ratio"], 3),
                fmt(row["ours"]["peak_mib"]),
                fmt(row["torchvision"]["peak_mib"]),
                fmt(row["memory_ratio"], 3),
            ]
            for row in rows
        ],
    )


def sampling_free_table(result):
    fmt = common.format_number
    return common.markdown_table(
        SAMPLING_FREE_HEADERS,
        [
            [
                "ours",
                fmt(result["biased"]["step_ms"]),
                fmt(result["sampling_free"]["step_ms"]),
                fmt(result["time_ratio"], 3),
                fmt(result["biased"]["peak_mib"]),
                fmt(result["sampling_free"]["peak_mib"]),
                fmt(result["memory_ratio"], 3),
            ]
        ],
    )


def main(argv=None):
    parser = common.make_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--skip-sampling-free", action="store_true", help="leave out the Sampling-Free vs biased comparison"
    )
    args = parser.parse_args(argv)
    settings = common.settings_from_args(args)
    names = common.parse_model_names(args.models)

    print(common.environment_line(settings))
    print("peak MiB: the most memory a step allocates above what is allocated when it starts\n")
    rows = benchmark_vs_torchvision(settings, names)
    print(vs_torchvision_table(rows))
    payload = {"settings": common.settings_dict(settings), "vs_torchvision": rows}
    if not args.skip_sampling_free:
        result = benchmark_sampling_free(settings)
        print()
        print(sampling_free_table(result))
        payload["sampling_free_vs_biased"] = result
    if args.json:
        common.write_json(args.json, payload)
    return payload


if __name__ == "__main__":
    main()
