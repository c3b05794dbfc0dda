#!/usr/bin/env python
"""Draw a detector's boxes, class names, scores and masks on images.

    python demo/draw_detections.py --config-file CONFIG --weights model_final.pth \
        --input a.png [b.png ...] --output detections.png [--confidence 0.5] [KEY VALUE ...]

With several inputs the pictures are written as ``<output stem>_<i>.png``.
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from demo.predictor import COCODemo, read_image  # noqa: E402


def _color(label):
    # a fixed, well-spread colour per class (BGR)
    hue = (label * 47) % 180
    hsv = np.uint8([[[hue, 200, 255]]])
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])


def draw_predictions(image, predictions, names, mask_alpha=0.45):
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
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        color = _color(label)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), color, 1)
        caption = f"{name} {score:.2f}"
        (text_w, text_h), baseline = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, 0.35, 1)
        top = max(y1 - text_h - baseline, 0)
        cv2.rectangle(canvas, (x1, top), (x1 + text_w, top + text_h + baseline), color, -1)
        cv2.putText(canvas, caption, (x1, top + text_h), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    return canvas


def output_paths(output, count):
    if count == 1:
        return [output]
    stem, ext = os.path.splitext(output)
    return [f"{stem}_{i}{ext or '.png'}" for i in range(count)]


def main(argv=None):
    parser = argparse.ArgumentParser(description="Draw detections on images")
    parser.add_argument("--config-file", required=True, metavar="FILE")
    parser.add_argument("--weights", default=None, help="checkpoint (default: OUTPUT_DIR's last checkpoint)")
    parser.add_argument("--input", nargs="+", required=True, help="image file(s)")
    parser.add_argument("--output", required=True, help="PNG file to write")
    parser.add_argument("--confidence", type=float, default=0.5, help="minimum score to draw")
    parser.add_argument("--random-weights", action="store_true",
                        help="draw an untrained model's detections (only when asked: missing weights are an error)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, default=[], help="config overrides KEY VALUE")
    args = parser.parse_args(argv)

    from maskrcnn_benchmark.engine.launch import load_config

    cfg = load_config(args.config_file, args.opts)
    demo = COCODemo(cfg, weights=args.weights, confidence_threshold=args.confidence,
                    random_weights=args.random_weights)
    written = []
    for image_path, out_path in zip(args.input, output_paths(args.output, len(args.input))):
        image = read_image(image_path)
        predictions = demo.predict(image)
        canvas = draw_predictions(image, predictions, demo.label_names(predictions))
        if os.path.dirname(out_path):
            os.makedirs(os.path.dirname(out_path), exist_ok=True)
        if not cv2.imwrite(out_path, canvas):
            raise OSError(f"cannot write {out_path}")
        print(f"{out_path}: {len(predictions)} detections")
        written.append(out_path)
    return written


if __name__ == "__main__":
    main()
