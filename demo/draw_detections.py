#!/usr/bin/env python
"""Draw a detector's boxes, class names, scores and masks on images.

    python demo/draw_detections.py --config-file CONFIG --weights model_final.pth \
        --input a.png [b.png ...] --output detections.png [--confidence 0.5] [KEY VALUE ...]

One picture per input (``<output stem>_<i>.png`` when there are several), or with ``--grid`` one
picture of all inputs, each upscaled ``--scale`` times, its ground truth (``--ground-truth``, a
COCO json) beside its detections. A picture without any detection at the confidence threshold
is still written, and then the command fails (exit 1, naming the pictures) unless
``--allow-empty`` is given: a detector that finds nothing is a result to notice, not to hide.
"""
import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from demo.predictor import COCODemo, read_image  # noqa: E402

FONT = cv2.FONT_HERSHEY_SIMPLEX
TITLE_COLOR = (40, 40, 40)  # BGR
TILE_GAP = 8


def _color(label):
    # a fixed, well-spread colour per class (BGR)
    hue = (label * 47) % 180
    hsv = np.uint8([[[hue, 200, 255]]])
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])


def _draw_box(canvas, box, color, caption, font_scale, thickness):
    """A rectangle and, above it (inside the picture), a filled caption bar."""
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    cv2.rectangle(canvas, (x1, y1), (x2, y2), color, thickness)
    (text_w, text_h), baseline = cv2.getTextSize(caption, FONT, font_scale, 1)
    top = max(y1 - text_h - baseline, 0)
    left = min(max(x1, 0), max(canvas.shape[1] - text_w, 0))
    cv2.rectangle(canvas, (left, top), (left + text_w, top + text_h + baseline), color, -1)
    cv2.putText(canvas, caption, (left, top + text_h), FONT, font_scale, (0, 0, 0), 1, cv2.LINE_AA)


def draw_predictions(image, predictions, names, mask_alpha=0.45, font_scale=0.35, thickness=1):
    """A copy of the BGR ``image`` with masks (blended), boxes and ``name score`` captions."""
    canvas = read_image(image).copy()
    labels = predictions.get_field("labels").tolist()
    scores = predictions.get_field("scores").tolist()
    if predictions.has_field("mask"):
        masks = predictions.get_field("mask")
        for mask, label in zip(masks, labels):
            region = mask.squeeze(0).numpy() > 0.5
            canvas[region] = ((1 - mask_alpha) * canvas[region] + mask_alpha * np.array(_color(label))).astype(np.uint8)
    for box, label, score, name in zip(predictions.convert("xyxy").bbox.tolist(), labels, scores, names):
        _draw_box(canvas, box, _color(label), f"{name} {score:.2f}", font_scale, thickness)
    return canvas


def draw_ground_truth(image, boxes, labels, names, font_scale=0.35, thickness=1):
    """A copy of the BGR ``image`` with the annotated ``boxes`` (xyxy) and their class names."""
    canvas = read_image(image).copy()
    for box, label, name in zip(boxes, labels, names):
        _draw_box(canvas, box, _color(label), name, font_scale, thickness)
    return canvas


def load_ground_truth(ann_file):
    """``{file name: (boxes xyxy, contiguous labels, class names)}`` from a COCO json; labels
    number the categories by sorted id from 1, as the COCO dataset (and so the detector) does."""
    with open(ann_file) as handle:
        coco = json.load(handle)
    category_ids = sorted(c["id"] for c in coco["categories"])
    contiguous = {cid: i + 1 for i, cid in enumerate(category_ids)}
    category_names = {c["id"]: c["name"] for c in coco["categories"]}
    by_image = {image["id"]: os.path.basename(image["file_name"]) for image in coco["images"]}
    truth = {name: ([], [], []) for name in by_image.values()}
    for annotation in coco["annotations"]:
        if annotation.get("iscrowd", 0):
            continue
        x, y, w, h = annotation["bbox"]
        boxes, labels, names = truth[by_image[annotation["image_id"]]]
        boxes.append([x, y, x + w, y + h])
        labels.append(contiguous[annotation["category_id"]])
        names.append(category_names[annotation["category_id"]])
    return truth


def upscale(image, predictions, scale):
    """``image`` and ``predictions`` (boxes and pasted masks) ``scale`` times larger."""
    if scale == 1:
        return image, predictions
    height, width = image.shape[:2]
    size = (int(round(width * scale)), int(round(height * scale)))
    larger = cv2.resize(image, size, interpolation=cv2.INTER_CUBIC)
    resized = predictions.resize(size)
    if predictions.has_field("mask"):
        masks = predictions.get_field("mask").float()
        if masks.numel():
            masks = torch.nn.functional.interpolate(masks, size=(size[1], size[0]), mode="nearest")
        resized.add_field("mask", masks)
    return larger, resized


def titled(tile, title, font_scale):
    """``tile`` under a white bar holding ``title``; the bar's height depends on the font alone,
    so that titled tiles of equal size line up."""
    (_, text_h), baseline = cv2.getTextSize("Ag(|)", FONT, font_scale, 1)
    bar = np.full((text_h + baseline + 8, tile.shape[1], 3), 255, dtype=np.uint8)
    cv2.putText(bar, title, (4, text_h + 4), FONT, font_scale, TITLE_COLOR, 1, cv2.LINE_AA)
    return np.concatenate([bar, tile], axis=0)


def compose_grid(cells, columns):
    """One picture of ``cells`` (equal-height BGR arrays, each a row's unit), ``columns`` a row,
    on a white background with gaps."""
    height = max(cell.shape[0] for cell in cells)
    width = max(cell.shape[1] for cell in cells)
    rows = (len(cells) + columns - 1) // columns
    canvas = np.full((rows * (height + TILE_GAP) + TILE_GAP, min(columns, len(cells)) * (width + TILE_GAP) + TILE_GAP, 3),
                     255, dtype=np.uint8)
    for index, cell in enumerate(cells):
        top = TILE_GAP + (index // columns) * (height + TILE_GAP)
        left = TILE_GAP + (index % columns) * (width + TILE_GAP)
        canvas[top:top + cell.shape[0], left:left + cell.shape[1]] = cell
    return canvas


def grid_cell(image, predictions, names, path, truth, scale, font_scale, confidence):
    """Ground truth (when known) beside the detections of one image, both upscaled and titled."""
    image, predictions = upscale(image, predictions, scale)
    thickness = max(1, int(round(scale / 2)))
    detected = titled(draw_predictions(image, predictions, names, font_scale=font_scale, thickness=thickness),
                      f"{len(predictions)} detections (score >= {confidence:g})", font_scale)
    if truth is None:
        return titled(detected, os.path.basename(path), font_scale)
    boxes, labels, gt_names = truth
    boxes = [[v * scale for v in box] for box in boxes]
    expected = titled(draw_ground_truth(image, boxes, labels, gt_names, font_scale=font_scale, thickness=thickness),
                      f"ground truth ({len(boxes)})", font_scale)
    gap = np.full((expected.shape[0], TILE_GAP // 2, 3), 255, dtype=np.uint8)
    return titled(np.concatenate([expected, gap, detected], axis=1), os.path.basename(path), font_scale)


def output_paths(output, count):
    if count == 1:
        return [output]
    stem, ext = os.path.splitext(output)
    return [f"{stem}_{i}{ext or '.png'}" for i in range(count)]


def _write(path, picture):
    if os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    if not cv2.imwrite(path, picture):
        raise OSError(f"cannot write {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description="Draw detections on images")
    parser.add_argument("--config-file", required=True, metavar="FILE")
    parser.add_argument("--weights", default=None, help="checkpoint (default: OUTPUT_DIR's last checkpoint)")
    parser.add_argument("--input", nargs="+", required=True, help="image file(s)")
    parser.add_argument("--output", required=True, help="PNG file to write")
    parser.add_argument("--confidence", type=float, default=0.5, help="minimum score to draw")
    parser.add_argument("--random-weights", action="store_true",
                        help="draw an untrained model's detections (only when asked: missing weights are an error)")
    parser.add_argument("--grid", action="store_true", help="one picture of all inputs side by side")
    parser.add_argument("--ground-truth", default=None, metavar="JSON",
                        help="COCO annotations of the inputs, drawn beside the detections (grid)")
    parser.add_argument("--scale", type=float, default=None, help="upscaling factor (default: 3 in a grid, else 1)")
    parser.add_argument("--columns", type=int, default=3, help="images per row of the grid")
    parser.add_argument("--allow-empty", action="store_true", help="do not fail when a picture has no detections")
    parser.add_argument("opts", nargs=argparse.REMAINDER, default=[], help="config overrides KEY VALUE")
    args = parser.parse_args(argv)
    scale = args.scale if args.scale is not None else (3.0 if args.grid else 1.0)
    if scale <= 0 or args.columns < 1:
        parser.error(f"--scale must be > 0 and --columns >= 1, got {scale} and {args.columns}")
    if args.ground_truth and not args.grid:
        parser.error("--ground-truth draws beside the detections in a --grid")
    truth = load_ground_truth(args.ground_truth) if args.ground_truth else None
    if truth is not None:
        unknown = [path for path in args.input if os.path.basename(path) not in truth]
        if unknown:
            parser.error(f"{args.ground_truth} has no image named {', '.join(map(os.path.basename, unknown))}")

    from maskrcnn_benchmark.engine.launch import load_config

    cfg = load_config(args.config_file, args.opts)
    demo = COCODemo(cfg, weights=args.weights, confidence_threshold=args.confidence,
                    random_weights=args.random_weights)
    font_scale = 0.35 * max(1.0, scale / 2)
    written, cells, empty = [], [], []
    for index, image_path in enumerate(args.input):
        image = read_image(image_path)
        predictions = demo.predict(image)
        print(f"{image_path}: {len(predictions)} detections")
        if len(predictions) == 0:
            empty.append(image_path)
        names = demo.label_names(predictions)
        if args.grid:
            image_truth = truth[os.path.basename(image_path)] if truth is not None else None
            cells.append(grid_cell(image, predictions, names, image_path, image_truth, scale, font_scale,
                                   args.confidence))
        else:
            image, predictions = upscale(image, predictions, scale)
            path = output_paths(args.output, len(args.input))[index]
            _write(path, draw_predictions(image, predictions, names, font_scale=font_scale))
            written.append(path)
    if args.grid:
        _write(args.output, compose_grid(cells, args.columns))
        written.append(args.output)
    print("wrote " + ", ".join(written))
    if empty and not args.allow_empty:
        raise SystemExit(f"draw_detections: no detection with score >= {args.confidence:g} in "
                         f"{', '.join(empty)} (pictures written to {', '.join(written)}); train longer, "
                         "lower --confidence, or pass --allow-empty")
    return written


if __name__ == "__main__":
    main()
