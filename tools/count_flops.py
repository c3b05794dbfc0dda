#!/usr/bin/env python
"""Parameters and FLOPs of a config's detector at a given input size (torch.utils.flop_counter).

    python tools/count_flops.py --config-file configs/e2e_faster_rcnn_R_50_FPN_1x.yaml --image-size 800 --image-width 1333
    python tools/count_flops.py --config-file CONFIG --mode train [KEY VALUE ...]

The model is built with random weights (MODEL.WEIGHT is not loaded) and run once on a random
image: ``inference`` counts the eval-mode forward, ``train`` a training forward (per module) and
its backward (in total) with a few synthetic boxes per image. FLOPs count 2 per multiply-add, over matrix products and
convolutions (PyTorch's counter; elementwise ops, NMS and RoIAlign are not counted). The RoI heads'
share depends on how many proposals reach them (RPN post-NMS top-n), which with random weights
is that top-n.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from maskrcnn_benchmark.engine.launch import load_config  # noqa: E402
from maskrcnn_benchmark.modeling.detector import build_detection_model  # noqa: E402
from maskrcnn_benchmark.structures.bounding_box import BoxList  # noqa: E402
from maskrcnn_benchmark.structures.image_list import to_image_list  # noqa: E402
from maskrcnn_benchmark.structures.segmentation_mask import SegmentationMask  # noqa: E402
from maskrcnn_benchmark.utils.device import resolve_device  # noqa: E402

SYNTHETIC_BOXES = 3


def synthetic_targets(cfg, height, width, batch, generator):
    """``SYNTHETIC_BOXES`` boxes per image with labels (and box-shaped polygon masks when
    MASK_ON), enough for every loss of a training step to run."""
    num_classes = cfg.MODEL.RETINANET.NUM_CLASSES if cfg.MODEL.RETINANET_ON else cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES
    targets = []
    for _ in range(batch):
        sides = (0.2 + 0.3 * torch.rand(SYNTHETIC_BOXES, 2, generator=generator)) * torch.tensor([width, height])
        corners = torch.rand(SYNTHETIC_BOXES, 2, generator=generator) * (torch.tensor([width, height]) - sides)
        boxes = torch.cat([corners, corners + sides], dim=1)
        target = BoxList(boxes, (width, height), mode="xyxy")
        target.add_field("labels", torch.randint(1, max(num_classes, 2), (SYNTHETIC_BOXES,), generator=generator))
        if cfg.MODEL.MASK_ON:
            polygons = [[[x1, y1, x2, y1, x2, y2, x1, y2]] for x1, y1, x2, y2 in boxes.tolist()]
            target.add_field("masks", SegmentationMask(polygons, (width, height)))
        targets.append(target)
    return targets


def count(cfg, height, width, mode="inference", batch=1, seed=0):
    """``{"params", "trainable_params", "flops", "forward_flops", "backward_flops", "per_module"}``
    for the detector of ``cfg``; per_module holds the forward FLOPs of the model's direct children
    (backbone, rpn, roi_heads, ...); backward_flops is 0 in inference."""
    if mode not in ("inference", "train"):
        raise ValueError(f"mode must be 'inference' or 'train', got {mode!r}")
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    device = resolve_device(cfg.MODEL.DEVICE)
    model = build_detection_model(cfg).to(device)
    images = to_image_list([torch.rand(3, height, width, generator=generator) * 255 for _ in range(batch)],
                           cfg.DATALOADER.SIZE_DIVISIBILITY).to(device)
    forward = FlopCounterMode(display=False)
    backward = FlopCounterMode(display=False)
    if mode == "inference":
        model.eval()
        with torch.no_grad(), forward:
            model(images)
    else:
        model.train()
        targets = [t.to(device) for t in synthetic_targets(cfg, height, width, batch, generator)]
        with forward:
            losses = model(images, targets)
        # Counted apart: the counter cannot tell reliably which module a backward op belongs to.
        with backward:
            sum(value for key, value in losses.items() if key.startswith("loss")).backward()
    root = type(model).__name__
    per_module = {name[len(root) + 1:]: sum(ops.values())
                  for name, ops in forward.get_flop_counts().items()
                  if name.startswith(root + ".") and "." not in name[len(root) + 1:]}
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "flops": forward.get_total_flops() + backward.get_total_flops(),
        "forward_flops": forward.get_total_flops(),
        "backward_flops": backward.get_total_flops(),
        "per_module": per_module,
    }


def report(result, config_file, height, width, mode, batch):
    lines = [
        f"{config_file or 'defaults'} at {height} x {width}, batch {batch}, {mode}",
        f"parameters: {result['params'] / 1e6:.2f} M ({result['trainable_params'] / 1e6:.2f} M trainable)",
        f"GFLOPs: {result['flops'] / 1e9:.2f} (2 per multiply-add)",
    ]
    rows = sorted(result["per_module"].items(), key=lambda item: -item[1])
    if mode == "train":
        rows.append(("backward (all)", result["backward_flops"]))
    for name, flops in rows:
        share = flops / result["flops"] if result["flops"] else 0.0
        lines.append(f"  {name:<20s} {flops / 1e9:10.2f} GFLOPs  {share:6.1%}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config-file", default="", metavar="FILE")
    parser.add_argument("--image-size", type=int, default=None, metavar="HEIGHT",
                        help="input height (default: INPUT.MIN_SIZE_TEST)")
    parser.add_argument("--image-width", type=int, default=None, metavar="WIDTH",
                        help="input width (default: the height, square)")
    parser.add_argument("--mode", choices=("inference", "train"), default="inference")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("opts", nargs=argparse.REMAINDER, default=[], help="config overrides KEY VALUE")
    args = parser.parse_args(argv)
    # Random weights: nothing is loaded or downloaded.
    cfg = load_config(args.config_file, ["MODEL.WEIGHT", "", *args.opts])
    height = args.image_size or cfg.INPUT.MIN_SIZE_TEST
    width = args.image_width or height
    if min(height, width) < 32:
        parser.error(f"--image-size / --image-width must be >= 32, got {height} x {width}")
    if args.batch < 1:
        parser.error(f"--batch must be >= 1, got {args.batch}")
    result = count(cfg, height, width, args.mode, args.batch)
    print(report(result, args.config_file, height, width, args.mode, args.batch))
    return result


if __name__ == "__main__":
    main()
