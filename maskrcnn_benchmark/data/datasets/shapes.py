"""A generated, deterministic toy detection dataset: simple shapes on a noisy background.

Each image holds 1 to 4 objects of four classes (square, circle, triangle, star) with random size,
colour, rotation and position. Objects never share a pixel, but their boxes may overlap. The
annotations are written in COCO format, so the dataset is read by ``COCODataset`` like any COCO
split.

Object pixels are painted through the very mask that pycocotools rasterises from the polygon in
the annotation, so the segmentation ground truth is exact, pixel for pixel.

Layout of a generated split::

    <root>/images/000000.png ...
    <root>/annotations.json

Command line::

    python -m maskrcnn_benchmark.data.datasets.shapes --out DIR --num N --seed S
"""
import argparse
import json
import math
import os
import shutil
import tempfile

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

CLASS_NAMES = ("square", "circle", "triangle", "star")
ANNOTATION_FILE = "annotations.json"
IMAGE_DIR = "images"

# Catalog splits: name -> (number of images, seed). Train and val use different seeds.
SHAPES_SPLITS = {
    "shapes_train": dict(num_images=256, seed=2024),
    "shapes_val": dict(num_images=64, seed=7),
}

# circumradius range as a fraction of the image side: 12 to 34 pixels at 128 x 128
_MIN_RADIUS_FRACTION = 0.09
_MAX_RADIUS_FRACTION = 0.27
_PLACEMENT_TRIES = 50


def shape_polygon(kind, cx, cy, radius, angle):
    """Vertices [x0, y0, x1, y1, ...] of a shape centred at (cx, cy) with circumradius ``radius``."""
    if kind == "square":
        radii, count = [radius], 4
    elif kind == "circle":
        radii, count = [radius], 32
    elif kind == "triangle":
        radii, count = [radius], 3
    elif kind == "star":
        # five points alternating between the outer and an inner radius
        radii, count = [radius, 0.45 * radius], 10
    else:
        raise ValueError("unknown shape kind {!r}; expected one of {}".format(kind, CLASS_NAMES))
    coords = []
    for k in range(count):
        theta = angle + 2.0 * math.pi * k / count
        r = radii[k % len(radii)]
        coords.extend([cx + r * math.cos(theta), cy + r * math.sin(theta)])
    return coords


def rasterize_polygon(polygon, height, width):
    """The binary mask (H x W, uint8) pycocotools draws for one polygon."""
    rles = mask_utils.frPyObjects([polygon], height, width)
    return mask_utils.decode(mask_utils.merge(rles))


def _noisy_background(rng, height, width):
    # a smooth random gradient plus per-pixel noise, in muted colours
    base = rng.uniform(60, 190, size=3)
    gradient = rng.uniform(-40, 40, size=(2, 3))
    ys = np.linspace(-0.5, 0.5, height)[:, None, None]
    xs = np.linspace(-0.5, 0.5, width)[None, :, None]
    image = base + ys * gradient[0] + xs * gradient[1]
    image = image + rng.normal(0.0, 8.0, size=(height, width, 3))
    return image


def _random_colour(rng):
    # saturated colours stand out against the muted background
    colour = rng.uniform(0, 255, size=3)
    colour[rng.integers(3)] = rng.uniform(200, 255)
    colour[rng.integers(3)] = rng.uniform(0, 50)
    return colour


def _render_image(rng, height, width, min_objects, max_objects):
    image = _noisy_background(rng, height, width)
    occupied = np.zeros((height, width), dtype=bool)
    objects = []
    for _ in range(int(rng.integers(min_objects, max_objects + 1))):
        for _ in range(_PLACEMENT_TRIES):
            label = int(rng.integers(len(CLASS_NAMES)))
            side = min(height, width)
            radius = float(rng.uniform(_MIN_RADIUS_FRACTION * side, _MAX_RADIUS_FRACTION * side))
            cx = float(rng.uniform(radius, width - radius))
            cy = float(rng.uniform(radius, height - radius))
            angle = float(rng.uniform(0.0, 2.0 * math.pi))
            polygon = shape_polygon(CLASS_NAMES[label], cx, cy, radius, angle)
            mask = rasterize_polygon(polygon, height, width).astype(bool)
            if mask.sum() > 0 and not (mask & occupied).any():
                break
        else:
            continue  # the image is too crowded for another object
        occupied |= mask
        texture = rng.normal(0.0, 6.0, size=(int(mask.sum()), 3))
        image[mask] = _random_colour(rng) + texture
        objects.append((label, polygon, mask))
    return np.clip(image, 0, 255).astype(np.uint8), objects


def _annotation(ann_id, image_id, label, polygon, mask):
    xs, ys = polygon[0::2], polygon[1::2]
    x1, y1, x2, y2 = min(xs), min(ys), max(xs), max(ys)
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": label + 1,
        "segmentation": [[round(v, 3) for v in polygon]],
        "bbox": [round(x1, 3), round(y1, 3), round(x2 - x1, 3), round(y2 - y1, 3)],
        "area": float(mask.sum()),
        "iscrowd": 0,
    }


def generate_shapes(out_dir, num_images, seed, image_size=128, min_objects=1, max_objects=4):
    """Write ``num_images`` images and their COCO json under ``out_dir``; same seed, same bytes.

    Returns the path of the annotation file. ``out_dir`` is created if needed.
    """
    if num_images < 1:
        raise ValueError("num_images must be >= 1, got {}".format(num_images))
    if not 1 <= min_objects <= max_objects:
        raise ValueError("need 1 <= min_objects <= max_objects, got {} and {}".format(
            min_objects, max_objects))
    if image_size < 32:
        raise ValueError("image_size must be >= 32, got {}".format(image_size))
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(out_dir, IMAGE_DIR), exist_ok=True)
    images, annotations = [], []
    for index in range(num_images):
        pixels, objects = _render_image(rng, image_size, image_size, min_objects, max_objects)
        file_name = "{:06d}.png".format(index)
        Image.fromarray(pixels, mode="RGB").save(os.path.join(out_dir, IMAGE_DIR, file_name))
        image_id = index + 1  # COCO ids start at 1
        images.append({"id": image_id, "file_name": file_name,
                       "height": image_size, "width": image_size})
        for label, polygon, mask in objects:
            annotations.append(_annotation(len(annotations) + 1, image_id, label, polygon, mask))
    coco = {
        "info": {"description": "generated shapes", "seed": seed, "version": "1"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i + 1, "name": name, "supercategory": "shape"}
                       for i, name in enumerate(CLASS_NAMES)],
    }
    ann_file = os.path.join(out_dir, ANNOTATION_FILE)
    with open(ann_file, "w") as f:
        json.dump(coco, f)
    return ann_file


def ensure_shapes_dataset(out_dir, num_images, seed, image_size=128):
    """Generate the split at ``out_dir`` unless it is already there; returns (image dir, ann file).

    The split is written to a temporary sibling folder and renamed into place, so a run that is
    aborted leaves no half-written split and concurrent runs do not see each other's partial files.
    """
    out_dir = os.path.abspath(out_dir)
    image_dir = os.path.join(out_dir, IMAGE_DIR)
    ann_file = os.path.join(out_dir, ANNOTATION_FILE)
    if os.path.isfile(ann_file):
        return image_dir, ann_file
    if os.path.exists(out_dir):
        raise RuntimeError("{} exists but holds no {}; remove it to regenerate the shapes "
                           "dataset".format(out_dir, ANNOTATION_FILE))
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    tmp_dir = tempfile.mkdtemp(prefix=".tmp_" + os.path.basename(out_dir) + "_", dir=parent)
    try:
        generate_shapes(tmp_dir, num_images, seed, image_size=image_size)
        try:
            os.rename(tmp_dir, out_dir)
        except OSError:
            # another process finished first; its copy is identical
            if not os.path.isfile(ann_file):
                raise
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return image_dir, ann_file


def main(argv=None):
    parser = argparse.ArgumentParser(description="Generate the shapes toy detection dataset.")
    parser.add_argument("--out", required=True, help="folder to create (images/, annotations.json)")
    parser.add_argument("--num", type=int, default=256, help="number of images")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--size", type=int, default=128, help="image side in pixels")
    args = parser.parse_args(argv)
    image_dir, ann_file = ensure_shapes_dataset(args.out, args.num, args.seed, args.size)
    print("shapes dataset: images in {}, annotations in {}".format(image_dir, ann_file))


if __name__ == "__main__":
    main()
