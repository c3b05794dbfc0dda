"""COCO evaluation: ground truth scores AP 1, perturbed predictions match pycocotools called
directly, proposal recall matches a hand count, the output files are written."""
import copy
import json
import os

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from pycocotools.cocoeval import COCOeval

from maskrcnn_benchmark.config.paths_catalog import tiny_coco_root
from maskrcnn_benchmark.data.datasets import COCODataset
from maskrcnn_benchmark.data.datasets.evaluation import evaluate
from maskrcnn_benchmark.data.datasets.evaluation.coco.coco_eval import evaluate_box_proposals
from maskrcnn_benchmark.data.datasets.shapes import generate_shapes
from maskrcnn_benchmark.structures.bounding_box import BoxList

TINY = tiny_coco_root()
RESIZED = 0.5  # predictions live in the resized image space; the evaluation scales them back


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    out = tmp_path_factory.mktemp("shapes_eval")
    generate_shapes(out, num_images=12, seed=5)
    return COCODataset(str(out / "annotations.json"), str(out / "images"), False)


def _gt_predictions(dataset, with_masks):
    """The non-crowd ground truth of every image as a prediction in the resized space."""
    predictions = []
    for index in range(len(dataset)):
        info = dataset.get_img_info(index)
        anns = [a for a in dataset.coco.imgToAnns[dataset.id_to_img_map[index]] if not a["iscrowd"]]
        boxes = torch.tensor([a["bbox"] for a in anns], dtype=torch.float32).reshape(-1, 4)
        prediction = BoxList(boxes, (info["width"], info["height"]), mode="xywh").convert("xyxy")
        prediction.add_field("scores", torch.linspace(1.0, 0.5, len(anns)))
        prediction.add_field("labels", torch.tensor(
            [dataset.json_category_id_to_contiguous_id[a["category_id"]] for a in anns],
            dtype=torch.int64))
        if with_masks:
            masks = [torch.from_numpy(dataset.coco.annToMask(a)) for a in anns]
            masks = torch.stack(masks)[:, None] if masks else torch.zeros(
                0, 1, info["height"], info["width"], dtype=torch.uint8)
            prediction.add_field("mask", masks)
        size = (round(info["width"] * RESIZED), round(info["height"] * RESIZED))
        predictions.append(prediction.resize(size))
    return predictions


def test_ground_truth_scores_ap_one_on_shapes(shapes, tmp_path):
    predictions = _gt_predictions(shapes, with_masks=True)
    results, coco_results = evaluate(shapes, predictions, str(tmp_path), box_only=False,
                                     iou_types=("bbox", "segm"))
    assert results["bbox"]["AP"] == pytest.approx(1.0, abs=1e-6)
    assert results["segm"]["AP"] == pytest.approx(1.0, abs=1e-6)
    for name in ("predictions.pth", "bbox.json", "segm.json", "metrics.json"):
        assert os.path.isfile(tmp_path / name)
    with open(tmp_path / "metrics.json") as f:
        assert json.load(f)["results"]["bbox"]["AP50"] == pytest.approx(1.0)
    # results carry the original COCO category ids
    assert {r["category_id"] for r in coco_results["bbox"]} <= set(shapes.coco.cats)


@pytest.mark.skipif(not os.path.isdir(TINY), reason="tiny_coco is absent")
def test_ground_truth_scores_ap_one_on_tiny_coco(tmp_path):
    dataset = COCODataset(os.path.join(TINY, "annotations", "instances_val2017.json"),
                          os.path.join(TINY, "val2017"), False)
    predictions = _gt_predictions(dataset, with_masks=True)
    results, coco_results = evaluate(dataset, predictions, None, iou_types=("bbox", "segm"))
    assert results["bbox"]["AP"] == pytest.approx(1.0, abs=1e-6)
    assert results["segm"]["AP"] == pytest.approx(1.0, abs=1e-6)
    assert {r["category_id"] for r in coco_results["bbox"]} <= set(dataset.coco.cats)
    assert max(r["category_id"] for r in coco_results["bbox"]) > 80  # non-contiguous json ids


def _perturb(predictions, seed):
    generator = torch.Generator().manual_seed(seed)
    perturbed = []
    for prediction in predictions:
        prediction = copy.deepcopy(prediction)
        noise = torch.randn(prediction.bbox.shape, generator=generator) * 3
        prediction.bbox = prediction.bbox + noise
        prediction.add_field("scores", torch.rand(len(prediction), generator=generator))
        labels = prediction.get_field("labels")
        flip = torch.rand(len(labels), generator=generator) < 0.2
        prediction.add_field("labels", torch.where(flip, labels % 4 + 1, labels))
        perturbed.append(prediction)
    return perturbed


def test_perturbed_predictions_match_pycocotools_directly(shapes):
    predictions = _perturb(_gt_predictions(shapes, with_masks=False), seed=0)
    results, _ = evaluate(shapes, predictions, None, iou_types=("bbox",))

    # the same detections written by hand, in original pixels, evaluated by pycocotools alone
    hand = []
    for index, prediction in enumerate(predictions):
        info = shapes.get_img_info(index)
        scale_x = info["width"] / prediction.size[0]
        scale_y = info["height"] / prediction.size[1]
        for (x1, y1, x2, y2), score, label in zip(prediction.bbox.tolist(),
                                                   prediction.get_field("scores").tolist(),
                                                   prediction.get_field("labels").tolist()):
            hand.append({"image_id": info["id"], "category_id": int(label), "score": score,
                         # widths count both corner pixels (maskrcnn-benchmark's convention, the default)
                         "bbox": [x1 * scale_x, y1 * scale_y, (x2 - x1) * scale_x + 1, (y2 - y1) * scale_y + 1]})
    coco_eval = COCOeval(shapes.coco, shapes.coco.loadRes(hand), "bbox")
    coco_eval.evaluate()
    coco_eval.accumulate()
    coco_eval.summarize()
    assert 0.05 < coco_eval.stats[0] < 0.95  # the perturbation matters
    for metric, value in zip(["AP", "AP50", "AP75", "APs", "APm", "APl"], coco_eval.stats):
        assert results["bbox"][metric] == pytest.approx(value, abs=1e-9)


def test_the_box_convention_says_what_the_predicted_corners_mean(shapes):
    # the ground truth as continuous corners (x + w): exact when read as "continuous", one pixel too
    # wide when read as maskrcnn-benchmark's inclusive corners (the default)
    predictions = []
    for prediction in _gt_predictions(shapes, with_masks=False):
        continuous = BoxList(prediction.bbox.clone(), prediction.size)
        continuous.bbox[:, 2:] += RESIZED  # the last pixel's far edge, in the resized frame
        continuous._copy_extra_fields(prediction)
        predictions.append(continuous)
    results, _ = evaluate(shapes, predictions, None, iou_types=("bbox",), box_convention="continuous")
    assert results["bbox"]["AP"] == pytest.approx(1.0, abs=1e-6)
    results, _ = evaluate(shapes, predictions, None, iou_types=("bbox",))
    assert results["bbox"]["AP"] < 0.99


def test_no_detection_at_all_gives_zero_ap(shapes):
    predictions = [p[[]] for p in _gt_predictions(shapes, with_masks=False)]
    results, _ = evaluate(shapes, predictions, None, iou_types=("bbox",))
    assert results["bbox"]["AP"] == 0.0


def test_wrong_number_of_predictions_is_an_error(shapes):
    with pytest.raises(ValueError, match="11 predictions for a dataset of 12"):
        evaluate(shapes, _gt_predictions(shapes, False)[:11], None, iou_types=("bbox",))


def test_proposal_recall_counts_covered_boxes(shapes):
    predictions = _gt_predictions(shapes, with_masks=False)
    proposals = []
    num_gt = covered = 0
    for prediction in predictions:
        # every other gt box is kept exactly; the others are pushed far off
        shift = torch.zeros_like(prediction.bbox)
        shift[1::2] = 200.0
        proposal = BoxList(prediction.bbox + shift, prediction.size)
        proposal.add_field("objectness", torch.rand(len(proposal)))
        proposals.append(proposal)
        num_gt += len(prediction)
        covered += (len(prediction) + 1) // 2
    stats = evaluate_box_proposals(proposals, shapes, area="all", limit=None)
    assert stats["num_pos"] == num_gt
    assert stats["ar"] == pytest.approx(covered / num_gt, abs=1e-4)

    results, _ = evaluate(shapes, proposals, None, box_only=True)
    assert results["box_proposal"]["AR@100"] == pytest.approx(covered / num_gt, abs=1e-4)
