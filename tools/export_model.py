#!/usr/bin/env python
"""Export a trained detector for deployment, as a torch.export program or an ONNX file.

    python tools/export_model.py --config-file configs/shapes/faster_rcnn_R_18_FPN_shapes.yaml \
        MODEL.WEIGHT output/quickstart/model_final.pth --format onnx --output frcnn.onnx

The file takes one image of a fixed size (``--image-size``, default the config's test size) as
the detector receives it (resized, BGR 0-255 minus INPUT.PIXEL_MEAN over INPUT.PIXEL_STD) and
returns ``boxes`` (D x 4), ``scores`` (D), ``labels`` (D), padded with label 0. After writing it,
the file is run on ``--check-image`` (through the config's test transforms; its size is then the
export size) or else on a random image (``--check-seed``), and its detections are compared with
PyTorch's; a disagreement is an error. The weights: ``--weights``, else the newest checkpoint of OUTPUT_DIR,
else MODEL.WEIGHT (``--random-weights`` exports an untrained model). See docs/EXPORT.md.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def default_image_size(cfg):
    """(height, width): the test size, rounded up to the batch padding (the model's real input)."""
    divisor = max(cfg.DATALOADER.SIZE_DIVISIBILITY, 1)
    side = -(-cfg.INPUT.MIN_SIZE_TEST // divisor) * divisor
    return side, side


def check_image(cfg, path):
    """The image at ``path`` as the detector receives it: 1 x 3 x H x W, padded to the divisibility."""
    from PIL import Image

    from maskrcnn_benchmark.data.transforms import build_transforms
    from maskrcnn_benchmark.structures.image_list import to_image_list

    tensor, _ = build_transforms(cfg, is_train=False)(Image.open(path).convert("RGB"), None)
    return to_image_list([tensor], cfg.DATALOADER.SIZE_DIVISIBILITY).tensors


def build_parser():
    from maskrcnn_benchmark.export import FORMATS

    parser = argparse.ArgumentParser(description="Export a detector (torch.export or ONNX)")
    parser.add_argument("--config-file", required=True, metavar="FILE")
    parser.add_argument("--format", required=True, choices=FORMATS)
    parser.add_argument("--output", required=True, help="file to write (.onnx or .pt2)")
    parser.add_argument("--weights", default=None, help="checkpoint (default: OUTPUT_DIR's newest, else MODEL.WEIGHT)")
    parser.add_argument("--random-weights", action="store_true", help="export an untrained model on purpose")
    parser.add_argument("--image-size", type=int, nargs=2, metavar=("HEIGHT", "WIDTH"), default=None,
                        help="input size of the exported model (default: INPUT.MIN_SIZE_TEST, square, "
                             "rounded up to DATALOADER.SIZE_DIVISIBILITY)")
    parser.add_argument("--check-image", default=None, metavar="FILE",
                        help="image the export is traced on and checked with (default: a random one)")
    parser.add_argument("--check-seed", type=int, default=0, help="seed of the random image the export is checked on")
    parser.add_argument("opts", nargs="*", default=[], metavar="KEY VALUE", help="config overrides")
    return parser


def main(argv=None):
    args = build_parser().parse_intermixed_args(argv)
    import torch

    from maskrcnn_benchmark import export
    from maskrcnn_benchmark.engine.launch import load_config
    from maskrcnn_benchmark.modeling.detector import build_detection_model
    from maskrcnn_benchmark.utils.checkpoint import DetectronCheckpointer, weights_to_evaluate

    cfg = load_config(args.config_file, args.opts)
    images = check_image(cfg, args.check_image) if args.check_image else None
    if images is not None and args.image_size and tuple(args.image_size) != tuple(images.shape[-2:]):
        sys.exit(f"export_model: --check-image {args.check_image} becomes {tuple(images.shape[-2:])} after the "
                 f"test transforms, not --image-size {tuple(args.image_size)}")
    height, width = images.shape[-2:] if images is not None else (args.image_size or default_image_size(cfg))
    divisor = cfg.DATALOADER.SIZE_DIVISIBILITY
    if height <= 0 or width <= 0 or (divisor > 0 and (height % divisor or width % divisor)):
        sys.exit(f"export_model: --image-size {height} {width} must be positive multiples of "
                 f"DATALOADER.SIZE_DIVISIBILITY ({divisor})")
    weights = weights_to_evaluate(cfg, args.weights, args.random_weights, flag="--weights")
    model = build_detection_model(cfg).eval()  # on the CPU: the exported file runs anywhere
    if weights is not None:
        DetectronCheckpointer(cfg, model).load(weights, use_latest=False, match="parameters")

    if images is None:
        images = torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(args.check_seed))
    try:
        export.save(model, images, args.format, args.output)
    except NotImplementedError as error:
        sys.exit(f"export_model: {args.config_file} cannot be exported: {error}")
    with torch.no_grad():
        (reference,) = model(images)
    problem = export.disagreement(reference, export.load_runner(args.format, args.output)(images))
    if problem is not None:
        sys.exit(f"export_model: {args.output} does not reproduce PyTorch's detections: {problem}")
    checked = args.check_image or "a random image"
    print(f"wrote {args.output} ({args.format}, input 1 x 3 x {height} x {width}, weights {weights or 'random'}); "
          f"on {checked} it gives PyTorch's {len(reference)} detections")


if __name__ == "__main__":
    main()
