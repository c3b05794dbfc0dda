"""tools/imbalance_report.py: per head and pyramid level N, N^f, the foreground fraction, the
optimal bias and the initial classification loss, from the optimal bias's own counting code; the
counts are the same on every run although the training transforms are random (seeded per image)."""
import json
import math
import os
import random
import sys

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, ROOT)
import imbalance_report  # noqa: E402
from maskrcnn_benchmark.config.paths_catalog import tiny_coco_root  # noqa: E402
from maskrcnn_benchmark.modeling.sampling_free.priors import prior_to_bias  # noqa: E402

SHAPES = os.path.join(ROOT, "configs", "shapes")


def register_images(tmp_path, sizes_and_boxes):
    """A COCO-format dataset of grey images (``(width, height, [[x, y, w, h], ...])`` each)."""
    (tmp_path / "images").mkdir(parents=True)
    images, annotations = [], []
    for index, (width, height, boxes) in enumerate(sizes_and_boxes, start=1):
        Image.fromarray(np.full((height, width, 3), 128, np.uint8)).save(tmp_path / "images" / f"{index}.png")
        images.append({"id": index, "file_name": f"{index}.png", "width": width, "height": height})
        for box in boxes:
            annotations.append({"id": len(annotations) + 1, "image_id": index, "category_id": 1 + len(annotations) % 2,
                                "bbox": box, "area": box[2] * box[3], "iscrowd": 0})
    coco = {"images": images, "annotations": annotations,
            "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}
    (tmp_path / "ann.json").write_text(json.dumps(coco))
    name = "imbalance_{}".format(abs(hash(str(tmp_path))))  # a name of its own: registrations persist
    return ["DATASETS.REGISTER", repr((f"{name}=coco:{tmp_path / 'ann.json'}:{tmp_path / 'images'}",)),
            "DATASETS.TRAIN", repr((name,))]


DATA = [(96, 64, [[10, 8, 30, 40], [50, 20, 40, 30]]), (128, 96, [[5, 5, 60, 60]]), (64, 64, [[20, 20, 12, 12]])]


def run(tmp_path, name, *options):
    out = tmp_path / name
    rows = imbalance_report.main(["--config-file", os.path.join(SHAPES, "retinanet_R-18-FPN_shapes.yaml"),
                                  "--output-dir", str(out), *register_images(tmp_path / name, DATA),
                                  "MODEL.RETINANET.NUM_CLASSES", "3", *options])
    return rows, out


def test_rows_per_level_and_the_head_total_with_their_bias_and_loss(tmp_path):
    rows, out = run(tmp_path, "plain")
    assert [r.level for r in rows] == ["stride 8", "stride 16", "stride 32", "stride 64", "stride 128", "all"]
    total = rows[-1]
    assert total.total == sum(r.total for r in rows[:-1]) and total.foreground == sum(r.foreground for r in rows[:-1])
    assert total.samples * 2 == total.total  # two foreground classes: two binary problems per anchor
    pi = total.foreground / total.total
    assert total.optimal_bias == pytest.approx(prior_to_bias(pi))
    # CE of every binary problem at pi, over N^f (eq. 13); the default bias is RetinaNet's PRIOR_PROB 0.01
    expected = -(total.foreground * math.log(pi) + (total.total - total.foreground) * math.log(1 - pi)) / total.foreground
    assert total.loss_at_optimal_bias == pytest.approx(expected)
    default = -(total.foreground * math.log(0.01) + (total.total - total.foreground) * math.log(0.99)) / total.foreground
    assert total.loss_at_default_bias == pytest.approx(default, rel=1e-4)
    assert total.loss_at_optimal_bias < total.loss_at_default_bias
    for r in rows[:-1]:  # a level's loss under the head's prior is no lower than under its own
        if r.foreground:
            own = r.foreground / r.total
            assert r.loss_at_optimal_bias >= -(r.foreground * math.log(own) + (r.total - r.foreground)
                                               * math.log(1 - own)) / r.foreground - 1e-9
    saved = json.loads((out / "imbalance.json").read_text())
    assert saved["images"] == 3 and len(saved["rows"]) == 6
    assert "| retina | all |" in (out / "imbalance.md").read_text()
    assert (out / "imbalance.png").stat().st_size > 1000


def test_counts_are_the_same_on_every_run_with_random_transforms(tmp_path):
    random_transforms = ("INPUT.MIN_SIZE_TRAIN", "(64, 96, 128)", "INPUT.MAX_SIZE_TRAIN", "200",
                         "INPUT.HORIZONTAL_FLIP_PROB_TRAIN", "0.5")
    random.seed(1)
    torch.manual_seed(1)
    first, _ = run(tmp_path, "first", *random_transforms)
    random.seed(2)
    torch.manual_seed(2)
    second, _ = run(tmp_path, "second", *random_transforms)
    assert [r.as_dict() for r in first] == [r.as_dict() for r in second]
    other_seed, _ = run(tmp_path, "other", *random_transforms, "SEED", "5")
    assert [r.total for r in other_seed] != [r.total for r in first]  # the transforms do vary with SEED


@pytest.mark.skipif(not os.path.isdir(tiny_coco_root()), reason="tiny_coco is absent")
def test_faster_rcnn_on_tiny_coco_reports_the_rpn_per_level_and_the_roi_head(tmp_path):
    rows = imbalance_report.main(["--config-file", os.path.join(ROOT, "configs", "e2e_faster_rcnn_R_50_FPN_1x_sampling_free.yaml"),
                                  "--output-dir", str(tmp_path), "--images", "3", "DATASETS.TRAIN", "('tiny_coco_train',)",
                                  "INPUT.MIN_SIZE_TRAIN", "(480,)", "INPUT.MAX_SIZE_TRAIN", "640"])
    rpn = [r for r in rows if r.head == "rpn"]
    roi = [r for r in rows if r.head == "roi"]
    assert [r.level for r in rpn] == ["stride 4", "stride 8", "stride 16", "stride 32", "stride 64", "all"]
    assert [r.level for r in roi] == ["all"]
    # the RoI head trains on up to 1000 proposals per image plus the ground truth: far less
    # imbalanced than the RPN's anchors
    assert roi[0].samples <= 3 * 1000 + 100
    assert roi[0].fraction > 10 * rpn[-1].fraction
