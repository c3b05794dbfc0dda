#!/usr/bin/env python
"""Draw the ground truth of a dataset as the model sees it in training (after the training
transforms: resize, flips, colour jitter) to image files: boxes, class names, masks.

    python tools/browse_dataset.py --config-file CONFIG --output-dir browse/ [--num 20] [--split test] [KEY VALUE ...]

One PNG per image, ``<index>_<file name>.png``; the captions read ``<class> 1.00`` (ground truth).
The first dataset of DATASETS.TRAIN (or DATASETS.TEST with --split test, test transforms) is drawn.
"""
import argparse
import os
import random
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from demo.draw_detections import draw_predictions  # noqa: E402
from maskrcnn_benchmark.config.paths_catalog import DatasetCatalog  # noqa: E402
from maskrcnn_benchmark.data.build import build_dataset  # noqa: E402
from maskrcnn_benchmark.data.transforms import build_transforms  # noqa: E402
from maskrcnn_benchmark.engine.launch import load_config  # noqa: E402


def to_bgr_uint8(tensor, cfg):
    """Undo INPUT's normalisation: the network input (C x H x W) as an H x W x 3 BGR uint8 array."""
    mean = torch.tensor(cfg.INPUT.PIXEL_MEAN)[:, None, None]
    std = torch.tensor(cfg.INPUT.PIXEL_STD)[:, None, None]
    image = tensor * std + mean
    if not cfg.INPUT.TO_BGR255:  # RGB in [0, 1]
        image = image[[2, 1, 0]] * 255
    return np.ascontiguousarray(image.clamp(0, 255).round().byte().permute(1, 2, 0).numpy())


def ground_truth_as_detections(target):
    """The target BoxList with what draw_predictions reads: scores (1) and pasted masks."""
    drawn = target.copy_with_fields(["labels"])
    drawn.add_field("scores", torch.ones(len(target)))
    if target.has_field("masks") and len(target):
        masks = target.get_field("masks").get_mask_tensor().reshape(len(target), target.size[1], target.size[0])
        drawn.add_field("mask", masks[:, None])
    return drawn


def class_names(dataset, labels):
    if hasattr(dataset, "contiguous_category_id_to_json_id"):
        return [dataset.categories[dataset.contiguous_category_id_to_json_id[label]] for label in labels]
    return [dataset.CLASSES[label] for label in labels]


def main(argv=None):
    parser = argparse.ArgumentParser(description="Draw a dataset's ground truth after the training transforms")
    parser.add_argument("--config-file", required=True, metavar="FILE")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--num", type=int, default=20, help="how many images (from the first)")
    parser.add_argument("--split", choices=("train", "test"), default="train")
    parser.add_argument("opts", nargs=argparse.REMAINDER, default=[], help="config overrides KEY VALUE")
    args = parser.parse_args(argv)

    cfg = load_config(args.config_file, args.opts)
    is_train = args.split == "train"
    names = cfg.DATASETS.TRAIN if is_train else cfg.DATASETS.TEST
    dataset = build_dataset([names[0]], build_transforms(cfg, is_train), DatasetCatalog, is_train)[0]
    random.seed(cfg.SEED)  # the random flips and scales
    torch.manual_seed(cfg.SEED)
    os.makedirs(args.output_dir, exist_ok=True)
    written = []
    for position in range(min(args.num, len(dataset))):
        image, target, index = dataset[position]
        drawn = ground_truth_as_detections(target)
        canvas = draw_predictions(to_bgr_uint8(image, cfg), drawn, class_names(dataset, drawn.get_field("labels").tolist()))
        file_name = os.path.splitext(os.path.basename(str(dataset.get_img_info(index).get("file_name", index))))[0]
        path = os.path.join(args.output_dir, "{:06d}_{}.png".format(index, file_name))
        if not cv2.imwrite(path, canvas):
            raise OSError("cannot write {}".format(path))
        written.append(path)
    print("{} images drawn under {}".format(len(written), args.output_dir))
    return written


if __name__ == "__main__":
    main()
