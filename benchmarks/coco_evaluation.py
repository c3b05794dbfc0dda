"""COCO evaluation time at COCO scale: pycocotools against faster-coco-eval (TEST.COCO_EVALUATOR).

Synthetic ground truth shaped like COCO val2017 (5,000 images, about 7 objects an image, 80
categories with COCO's non-contiguous ids, some crowd regions) and synthetic detections (jittered
ground truth with some wrong labels plus random false positives, ``--dets`` an image) go through
``do_coco_evaluation`` once per evaluator; the table gives the seconds of each and the ratio, and
checks that both report the same COCO numbers (to 1e-12).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/coco_evaluation.py              # bbox, 5,000 images
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/coco_evaluation.py --segm --images 500
"""
import argparse
import contextlib
import io
import json
import logging
import time

import numpy as np
import torch
from pycocotools.coco import COCO

from maskrcnn_benchmark.data.datasets.evaluation.coco.coco_eval import COCO_EVALUATORS, do_coco_evaluation
from maskrcnn_benchmark.structures.bounding_box import BoxList

# COCO's 80 category ids (1..90 with gaps)
COCO_CATEGORY_IDS = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]


class SyntheticCOCO(object):
    """What the COCO evaluation reads from a dataset, without image files."""

    def __init__(self, coco):
        self.coco = coco
        self.ids = sorted(coco.imgs)
        self.id_to_img_map = dict(enumerate(self.ids))
        self.json_category_id_to_contiguous_id = {j: i for i, j in enumerate(sorted(coco.cats), 1)}
        self.contiguous_category_id_to_json_id = {i: j for j, i in self.json_category_id_to_contiguous_id.items()}

    def __len__(self):
        return len(self.ids)

    def get_img_info(self, index):
        return self.coco.imgs[self.id_to_img_map[index]]


def _octagon(x, y, w, h):
    cx, cy = x + w / 2, y + h / 2
    angles = np.arange(8) * np.pi / 4
    return np.stack([cx + w / 2 * np.cos(angles), cy + h / 2 * np.sin(angles)], 1).ravel().round(2).tolist()


def synthetic_coco(num_images, dets_per_image, seed=0, with_masks=False, mask_size=28):
    """``(dataset, predictions)``: a COCO-like ground truth and detections for it, predictions in
    the original frame (boxes) with ``mask_size`` square masks when ``with_masks``."""
    rng = np.random.default_rng(seed)
    images, annotations = [], []
    for image_id in range(1, num_images + 1):
        width, height = int(rng.integers(320, 641)), int(rng.integers(240, 481))
        images.append({"id": image_id, "file_name": "{:012d}.jpg".format(image_id), "width": width, "height": height})
        for _ in range(int(rng.integers(1, 15))):
            w, h = float(rng.uniform(4, width / 2)), float(rng.uniform(4, height / 2))
            x, y = float(rng.uniform(0, width - w)), float(rng.uniform(0, height - h))
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": int(rng.choice(COCO_CATEGORY_IDS)), "bbox": [x, y, w, h],
                                "area": w * h * 0.8, "iscrowd": int(rng.random() < 0.01),
                                "segmentation": [_octagon(x, y, w, h)]})
    coco = COCO()
    coco.dataset = {"images": images, "annotations": annotations,
                    "categories": [{"id": i, "name": "category {}".format(i)} for i in COCO_CATEGORY_IDS]}
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    dataset = SyntheticCOCO(coco)

    predictions = []
    for index in range(len(dataset)):
        info = dataset.get_img_info(index)
        anns = coco.imgToAnns[info["id"]]
        boxes, labels = [], []
        for ann in anns:
            if rng.random() < 0.8:
                x, y, w, h = ann["bbox"]
                jitter = rng.normal(0, 0.08, 4) * [w, h, w, h]
                boxes.append([x + jitter[0], y + jitter[1], x + w + jitter[2], y + h + jitter[3]])
                label = ann["category_id"] if rng.random() < 0.9 else int(rng.choice(COCO_CATEGORY_IDS))
                labels.append(dataset.json_category_id_to_contiguous_id[label])
        while len(boxes) < dets_per_image:
            x1, y1 = rng.uniform(0, info["width"] - 8), rng.uniform(0, info["height"] - 8)
            boxes.append([x1, y1, rng.uniform(x1 + 4, info["width"]), rng.uniform(y1 + 4, info["height"])])
            labels.append(int(rng.integers(1, len(COCO_CATEGORY_IDS) + 1)))
        prediction = BoxList(torch.tensor(boxes, dtype=torch.float32), (info["width"], info["height"]))
        prediction.add_field("labels", torch.tensor(labels, dtype=torch.int64))
        prediction.add_field("scores", torch.from_numpy(rng.random(len(boxes)).astype(np.float32)))
        if with_masks:
            yy, xx = np.mgrid[0:mask_size, 0:mask_size] + 0.5
            ellipse = ((xx / mask_size - 0.5) ** 2 + (yy / mask_size - 0.5) ** 2 < 0.25).astype(np.float32)
            noise = rng.uniform(-0.3, 0.3, (len(boxes), 1, mask_size, mask_size)).astype(np.float32)
            prediction.add_field("mask", torch.from_numpy(np.clip(ellipse[None, None] + noise, 0, 1)))
        predictions.append(prediction)
    return dataset, predictions


def evaluate_with(evaluator, dataset, predictions, iou_types):
    """(seconds, COCOResults) of one evaluation."""
    start = time.perf_counter()
    results, _ = do_coco_evaluation(dataset, predictions, box_only=False, output_folder=None, iou_types=iou_types,
                                    coco_evaluator=evaluator)
    return time.perf_counter() - start, results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--dets", type=int, default=100, help="detections an image")
    parser.add_argument("--segm", action="store_true", help="also masks (28 x 28, pasted and RLE-encoded)")
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    iou_types = ("bbox", "segm") if args.segm else ("bbox",)
    dataset, predictions = synthetic_coco(args.images, args.dets, with_masks=args.segm)
    timings, results = {}, {}
    for evaluator in COCO_EVALUATORS:
        timings[evaluator], results[evaluator] = evaluate_with(evaluator, dataset, predictions, iou_types)
    reference = timings["pycocotools"]
    print("| evaluator | {} images, {} detections, {} | seconds | time / pycocotools | AP |".format(
        args.images, sum(len(p) for p in predictions), "+".join(iou_types)))
    print("|---|---|---|---|---|")
    for evaluator in COCO_EVALUATORS:
        aps = " / ".join("{:.4f}".format(results[evaluator][t]["AP"]) for t in iou_types)
        print("| {} | | {:.1f} | {:.2f} | {} |".format(evaluator, timings[evaluator],
                                                       timings[evaluator] / reference, aps))
    same = all(abs(results["pycocotools"][t][m] - results[e][t][m]) < 1e-12
               for e in COCO_EVALUATORS for t in iou_types for m in results[e][t])
    print("same COCO numbers from both: {}".format(same))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"timings_s": timings, "results": {e: r.results for e, r in results.items()}, "same": same},
                      f, indent=2)


if __name__ == "__main__":
    main()
