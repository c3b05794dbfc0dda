"""What the Table VIII heuristics cost: training-step time and peak memory of each sample strategy
against its detector's baseline, measured in the same process on the same batch.

Faster R-CNN R-50-FPN: biased sampling (baseline) vs OHEM, IoU-balanced sampling, ISR and
Sampling-Free; RetinaNet R-50-FPN: focal loss (baseline) vs GHM-C and Sampling-Free. Each model is
built from its COCO yaml (``configs/*_ohem.yaml`` etc.) with the fairness settings of
``common.BenchSettings`` (random weights, lr 0, RPN NMS 1.0 so every RoI head gets the post-NMS
top-n proposals), and one step is the trainer's step (``train_step.TrainStep``). All methods of a
detector are timed in alternation, so a drift of the machine's load hits them alike; the ratios
are what to read. ``--repeats`` measures again (same models) to show how stable the ratios are.

With these random weights every negative RoI's best class score is above ISR-N's 0.05
threshold (the untrained box head's softmax is far from uniform), so ISR-N ranks and clusters all
of them, its most expensive case; the row "ISR, no negative ranked" sets the threshold to 1 to
separate the cost of the scoring forward (shared with OHEM) from that of the ranking.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/heuristics_cost.py --image-size 512 --iters 3 --warmup 1
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (the benchmarks folder is not a package)
import train_step  # noqa: E402

# (detector, [(label, yaml variant or None for the baseline, extra KEY value options)])
METHODS = {
    "faster_rcnn": [
        ("biased sampling (baseline)", None, ()),
        ("OHEM", "ohem", ()),
        ("IoU-balanced sampling", "iou_balanced", ()),
        ("ISR (ISR-N + ISR-P)", "isr", ()),
        ("ISR, no negative ranked", "isr", ("MODEL.SAMPLING_FREE.ROI.HARD_OPTIONS.SCORE_THRESH", 1.0)),
        ("Sampling-Free", "sampling_free", ()),
    ],
    "retinanet": [
        ("focal loss (baseline)", None, ()),
        ("GHM-C", "ghm", ()),
        ("Sampling-Free", "sampling_free", ()),
    ],
}
HEADERS = ["detector", "method", "ms / step", "time ratio", "peak MiB", "memory ratio"]


def measure_detector(name, settings, repeats):
    """Per method of ``name``: its measurements in each of ``repeats`` rounds and the ratios to
    the baseline (the first method) of the same round."""
    batch = common.make_batch(settings)
    steps = {label: train_step.our_train_step(name, settings, batch, variant=variant, options=options)
             for label, variant, options in METHODS[name]}
    rounds = [train_step.measure_pair(steps, settings) for _ in range(repeats)]
    baseline = METHODS[name][0][0]
    rows = []
    for label, _, _ in METHODS[name]:
        measured = [r[label] for r in rounds]
        rows.append({
            "model": name,
            "method": label,
            "rounds": measured,
            "time_ratios": [common.ratio(m["step_ms"], r[baseline]["step_ms"]) for m, r in zip(measured, rounds)],
            "memory_ratios": [common.ratio(m["peak_mib"], r[baseline]["peak_mib"]) for m, r in zip(measured, rounds)],
        })
    return rows


def cost_table(rows):
    fmt = common.format_number

    def each(values, digits):
        return " / ".join(fmt(v, digits) for v in values)

    return common.markdown_table(HEADERS, [
        [common.MODEL_TITLES[row["model"]], row["method"], each([m["step_ms"] for m in row["rounds"]], 0),
         each(row["time_ratios"], 3), each([m["peak_mib"] for m in row["rounds"]], 1), each(row["memory_ratios"], 3)]
        for row in rows
    ])


def main(argv=None):
    parser = common.make_parser(__doc__.splitlines()[0])
    parser.set_defaults(models="faster_rcnn,retinanet")
    parser.add_argument("--repeats", type=int, default=1, help="measure every method this many times")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    settings = common.settings_from_args(args)
    names = common.parse_model_names(args.models)
    unknown = [name for name in names if name not in METHODS]
    if unknown:
        parser.error(f"--models: no heuristics for {unknown}; choose from {', '.join(METHODS)}")

    note = ("peak MiB: the most memory a step allocates above what is allocated when it starts; "
            f"each cell: the {args.repeats} round(s) of measurement")
    return common.print_and_save(
        args, settings, note, lambda: [row for name in names for row in measure_detector(name, settings, args.repeats)],
        cost_table, "rows")


if __name__ == "__main__":
    main()
