"""COCO evaluation of detections, masks and proposals with pycocotools (or faster-coco-eval).

Predictions are a list of BoxList indexed like the dataset, in the resized (network input) image
space, with fields ``scores`` and ``labels`` (contiguous ids), optionally ``mask`` and, for
proposals, ``objectness``. ``mask`` is what the mask head gives, ``N x 1 x M x M``
probabilities, which are pasted into the original image at the boxes; masks already pasted,
``N x 1 x H x W`` at the original size or at the network-input size, are taken as they are
(resampled to the original size in the second case). An entry of None is an image left out of
the evaluation (a corrupt image under DATALOADER.SKIP_CORRUPT_IMAGES): it is not scored, and its
ground truth is not counted either.

A dataset without annotations (COCO test-dev's image-info json) is not scored: its results are
written in the evaluation server's format, ``detections_<split>_<name>_results.json``.
"""
import contextlib
import copy
import io
import json
import logging
import os
from collections import OrderedDict

import numpy as np
import pycocotools.mask as mask_util
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from torch.nn import functional as F
from torchvision.ops import box_iou

from maskrcnn_benchmark.modeling.roi_heads.mask_head.inference import Masker
from maskrcnn_benchmark.structures.box_convention import DEFAULT_BOX_CONVENTION, box_convention

logger = logging.getLogger(__name__)

COCO_EVALUATORS = ("pycocotools", "faster_coco_eval")
MASK_THRESHOLD = 0.5


def _check_predictions(predictions, dataset):
    if len(predictions) != len(dataset):
        raise ValueError("got {} predictions for a dataset of {} images; predictions must be a list "
                         "indexed like the dataset (None for an image left out)".format(len(predictions), len(dataset)))


def evaluated_indices(predictions, dataset):
    """Dataset indices that have a prediction; the images left out (None) are logged by name."""
    left_out = [i for i, p in enumerate(predictions) if p is None]
    if left_out:
        names = [dataset.get_img_info(i).get("file_name", i) for i in left_out]
        logger.warning("%d of %d images are left out of the evaluation (unreadable, DATALOADER.SKIP_CORRUPT_IMAGES): "
                       "%s%s", len(left_out), len(predictions), ", ".join(map(str, names[:10])),
                       ", ..." if len(names) > 10 else "")
    return [i for i, p in enumerate(predictions) if p is not None]


def _original_size_boxes(prediction, dataset, index):
    info = dataset.get_img_info(index)
    return prediction.resize((info["width"], info["height"]))


def prepare_for_coco_detection(predictions, dataset, convention=DEFAULT_BOX_CONVENTION):
    """COCO result dicts (xywh boxes at the original size, json category ids); the predicted corners
    are in the box ``convention`` (with inclusive corners a box is ``x2 - x1 + 1`` wide)."""
    convention = box_convention(convention)
    coco_results = []
    for index, prediction in enumerate(predictions):
        if prediction is None or len(prediction) == 0:
            continue
        image_id = dataset.id_to_img_map[index]
        boxes = _original_size_boxes(prediction, dataset, index).convert("xywh", convention).bbox.tolist()
        scores = prediction.get_field("scores").tolist()
        labels = prediction.get_field("labels").tolist()
        for box, score, label in zip(boxes, scores, labels):
            coco_results.append({
                "image_id": image_id,
                "category_id": dataset.contiguous_category_id_to_json_id[int(label)],
                "bbox": box,
                "score": score,
            })
    return coco_results


def masks_at_original_size(prediction, info, masker=None, convention=DEFAULT_BOX_CONVENTION):
    """The ``mask`` field of ``prediction`` (network-input frame) as ``N x H x W`` booleans at the
    original size ``info["height"] x info["width"]`` (see the module docstring for the forms)."""
    height, width = int(info["height"]), int(info["width"])
    masks = prediction.get_field("mask")
    if masks.dim() == 3:
        masks = masks[:, None]
    if masks.dim() != 4 or masks.shape[1] != 1 or masks.shape[0] != len(prediction):
        raise ValueError("image {}: the mask field must be N x 1 x h x w for {} detections, got {}".format(
            info.get("file_name"), len(prediction), tuple(masks.shape)))
    if tuple(masks.shape[-2:]) == (height, width):
        return masks[:, 0] > MASK_THRESHOLD
    input_width, input_height = (int(round(float(v))) for v in prediction.size)
    if tuple(masks.shape[-2:]) == (input_height, input_width):  # pasted into the network input
        resized = F.interpolate(masks.float(), size=(height, width), mode="bilinear", align_corners=False)
        return resized[:, 0] > MASK_THRESHOLD
    # M x M probabilities of the mask head: paste them at the boxes, in the original frame
    masker = masker or Masker(threshold=MASK_THRESHOLD, padding=1, convention=convention)
    boxes = prediction.resize((width, height))
    return masker([masks], [boxes])[0][:, 0] > 0


def prepare_for_coco_segmentation(predictions, dataset, convention=DEFAULT_BOX_CONVENTION):
    """COCO result dicts with RLE-encoded masks at the original image size (thresholded at 0.5;
    the mask head's masks pasted at boxes of the box ``convention``)."""
    coco_results = []
    masker = Masker(threshold=MASK_THRESHOLD, padding=1, convention=convention)
    for index, prediction in enumerate(predictions):
        if prediction is None or len(prediction) == 0:
            continue
        image_id = dataset.id_to_img_map[index]
        info = dataset.get_img_info(index)
        binary = masks_at_original_size(prediction, info, masker, convention)
        binary = np.asfortranarray(binary.permute(1, 2, 0).cpu().numpy().astype(np.uint8))
        rles = mask_util.encode(binary)
        scores = prediction.get_field("scores").tolist()
        labels = prediction.get_field("labels").tolist()
        for rle, score, label in zip(rles, scores, labels):
            rle["counts"] = rle["counts"].decode("utf-8")  # json cannot hold bytes
            coco_results.append({
                "image_id": image_id,
                "category_id": dataset.contiguous_category_id_to_json_id[int(label)],
                "segmentation": rle,
                "score": score,
            })
    return coco_results


# COCO's area ranges for proposal recall, in square pixels
_AREA_RANGES = {
    "all": (0, 1e10), "small": (0, 32 ** 2), "medium": (32 ** 2, 96 ** 2), "large": (96 ** 2, 1e10),
    "96-128": (96 ** 2, 128 ** 2), "128-256": (128 ** 2, 256 ** 2), "256-512": (256 ** 2, 512 ** 2),
    "512-inf": (512 ** 2, 1e10),
}


def _greedy_best_overlaps(overlaps):
    """For a proposals x gt IoU matrix, repeatedly take the gt whose best proposal overlaps it
    most, and retire both; returns the IoU each covered gt got (the Fast R-CNN recall protocol)."""
    overlaps = overlaps.clone()
    covered = torch.zeros(overlaps.shape[1])
    for j in range(min(overlaps.shape)):
        best_per_gt, best_proposal = overlaps.max(dim=0)
        gt = int(best_per_gt.argmax())
        covered[j] = best_per_gt[gt]
        overlaps[best_proposal[gt], :] = -1
        overlaps[:, gt] = -1
    return covered


def evaluate_box_proposals(predictions, dataset, thresholds=None, area="all", limit=None,
                           convention=DEFAULT_BOX_CONVENTION):
    """Recall of the ``limit`` highest-objectness proposals over non-crowd gt boxes of ``area``,
    at each IoU threshold (default 0.5:0.95:0.05); ``ar`` is the mean recall. Proposals are in the box
    ``convention``, compared with the (continuous) annotations as continuous boxes."""
    convention = box_convention(convention)
    if area not in _AREA_RANGES:
        raise ValueError("unknown area {!r}; expected one of {}".format(area, list(_AREA_RANGES)))
    low, high = _AREA_RANGES[area]
    gt_overlaps, num_pos = [], 0
    for index, prediction in enumerate(predictions):
        if prediction is None:
            continue
        prediction = _original_size_boxes(prediction, dataset, index)
        order = prediction.get_field("objectness").sort(descending=True)[1]
        boxes = convention.to_continuous(prediction.convert("xyxy", convention).bbox[order])
        if limit is not None:
            boxes = boxes[:limit]
        anns = [a for a in dataset.coco.imgToAnns[dataset.id_to_img_map[index]]
                if a.get("iscrowd", 0) == 0 and low <= a["area"] <= high]
        num_pos += len(anns)
        if not anns or len(boxes) == 0:
            continue
        gt = torch.as_tensor([a["bbox"] for a in anns], dtype=torch.float32).reshape(-1, 4)
        gt[:, 2:] += gt[:, :2]
        gt_overlaps.append(_greedy_best_overlaps(box_iou(boxes.float(), gt)))
    gt_overlaps = torch.cat(gt_overlaps) if gt_overlaps else torch.zeros(0)
    if thresholds is None:
        thresholds = torch.arange(0.5, 0.95 + 1e-5, 0.05)
    thresholds = torch.as_tensor(thresholds, dtype=torch.float32)
    recalls = torch.tensor([(gt_overlaps >= t).sum().item() / max(num_pos, 1) for t in thresholds])
    return {"ar": recalls.mean().item(), "recalls": recalls, "thresholds": thresholds,
            "gt_overlaps": gt_overlaps, "num_pos": num_pos}


def _evaluator_classes(evaluator):
    """(COCO class, COCOeval class) of the chosen implementation."""
    if evaluator == "pycocotools":
        return COCO, COCOeval
    if evaluator == "faster_coco_eval":
        try:
            from faster_coco_eval import COCO as FasterCOCO
            from faster_coco_eval import COCOeval_faster
        except ImportError as err:
            raise ImportError("TEST.COCO_EVALUATOR 'faster_coco_eval' needs the faster-coco-eval package "
                              "(pip install faster-coco-eval)") from err
        return FasterCOCO, COCOeval_faster
    raise ValueError("TEST.COCO_EVALUATOR must be one of {}, got {!r}".format(COCO_EVALUATORS, evaluator))


def _ground_truth_for(coco_gt, evaluator):
    """``coco_gt`` (a pycocotools COCO) as the ground-truth object of ``evaluator``."""
    coco_class, _ = _evaluator_classes(evaluator)
    if isinstance(coco_gt, coco_class):
        return coco_gt
    converted = getattr(coco_gt, "_converted_for_" + evaluator, None)
    if converted is None:  # built once per ground truth: a deep copy, so neither side changes the other
        with contextlib.redirect_stdout(io.StringIO()):
            converted = coco_class(copy.deepcopy(coco_gt.dataset))
        setattr(coco_gt, "_converted_for_" + evaluator, converted)
    return converted


def evaluate_predictions_on_coco(coco_gt, coco_results, json_result_file, iou_type="bbox", image_ids=None,
                                 evaluator="pycocotools"):
    """Write ``coco_results`` to ``json_result_file`` (when given) and run COCOeval on them, over
    ``image_ids`` (default: every image of ``coco_gt``)."""
    if json_result_file is not None:
        with open(json_result_file, "w") as f:
            json.dump(coco_results, f)
    coco_class, coco_eval_class = _evaluator_classes(evaluator)
    coco_gt = _ground_truth_for(coco_gt, evaluator)
    with contextlib.redirect_stdout(io.StringIO()):
        if coco_results:
            coco_dt = coco_gt.loadRes([dict(r) for r in coco_results])  # loadRes adds keys to the dicts
        else:  # no detection at all: every AP is 0
            coco_dt = coco_class()
            coco_dt.dataset = {"images": coco_gt.dataset["images"],
                               "categories": coco_gt.dataset["categories"], "annotations": []}
            coco_dt.createIndex()
        coco_eval = coco_eval_class(coco_gt, coco_dt, iou_type)
        if image_ids is not None:
            coco_eval.params.imgIds = list(image_ids)
        coco_eval.evaluate()
        coco_eval.accumulate()
    summary = io.StringIO()
    with contextlib.redirect_stdout(summary):
        coco_eval.summarize()
    logger.info("COCO %s evaluation:\n%s", iou_type, summary.getvalue())
    return coco_eval


def per_class_ap(coco_eval):
    """{category name: AP at IoU 0.5:0.95, all areas, 100 detections} for the categories that
    have ground truth in the evaluated images; those without any have no AP and no entry."""
    precision = coco_eval.eval["precision"]  # [iou, recall, class, area, max dets]
    names = {c["id"]: c["name"] for c in coco_eval.cocoGt.dataset["categories"]}
    result = OrderedDict()
    for k, cat_id in enumerate(coco_eval.params.catIds):
        values = precision[:, :, k, 0, -1]
        values = values[values > -1]
        if values.size:
            result[names.get(cat_id, str(cat_id))] = float(values.mean())
    return result


def _log_per_class_table(iou_type, table, num_categories):
    lines = ["{:<24s} {:>6s}".format("category", "AP")]
    lines += ["{:<24s} {:6.3f}".format(name, ap) for name, ap in table.items()]
    absent = num_categories - len(table)
    if absent:
        lines.append("({} categories without ground truth in the evaluated images are not listed)".format(absent))
    logger.info("per-class %s AP:\n%s", iou_type, "\n".join(lines))


class COCOResults(object):
    """``results[iou_type][metric]``, e.g. ``results["bbox"]["AP"]``; -1 until evaluated."""

    METRICS = {
        "bbox": ["AP", "AP50", "AP75", "APs", "APm", "APl"],
        "segm": ["AP", "AP50", "AP75", "APs", "APm", "APl"],
        "box_proposal": ["AR@100", "ARs@100", "ARm@100", "ARl@100",
                         "AR@1000", "ARs@1000", "ARm@1000", "ARl@1000"],
        "keypoints": ["AP", "AP50", "AP75", "APm", "APl"],
    }

    def __init__(self, *iou_types):
        allowed = ("box_proposal", "bbox", "segm", "keypoints")
        for iou_type in iou_types:
            if iou_type not in allowed:
                raise ValueError("unknown iou type {!r}; expected one of {}".format(iou_type, allowed))
        self.results = OrderedDict(
            (t, OrderedDict((m, -1.0) for m in self.METRICS[t])) for t in iou_types)
        self.per_class = OrderedDict()

    def update(self, coco_eval):
        if coco_eval is None:
            return
        iou_type = coco_eval.params.iouType
        for metric, value in zip(self.METRICS[iou_type], coco_eval.stats):
            self.results[iou_type][metric] = float(value)
        if iou_type in ("bbox", "segm"):
            self.per_class[iou_type] = per_class_ap(coco_eval)

    def __getitem__(self, iou_type):
        return self.results[iou_type]

    def as_dict(self):
        """Flat ``{"bbox/AP": ..., "segm/AP50": ...}`` for metrics.json."""
        return {"{}/{}".format(t, m): v for t, metrics in self.results.items() for m, v in metrics.items()}

    def __repr__(self):
        return repr(dict(self.results))


def check_expected_results(results, expected_results, sigma_tol):
    """Log whether each ``(iou_type, metric, mean, std)`` lies within ``sigma_tol`` std of the
    mean; returns True when all do."""
    all_ok = True
    for iou_type, metric, mean, std in expected_results:
        actual = results.results[iou_type][metric]
        low, high = mean - sigma_tol * std, mean + sigma_tol * std
        ok = low < actual < high
        all_ok &= ok
        message = "{} > {} sanity check (actual vs. expected): {:.3f} vs. mean={:.4f}, std={:.4f}, " \
                  "range=({:.4f}, {:.4f})".format(iou_type, metric, actual, mean, std, low, high)
        if ok:
            logger.info("PASS: %s", message)
        else:
            logger.error("FAIL: %s", message)
    return all_ok


def _check_masks_can_be_scored(dataset, iou_types):
    missing = getattr(dataset, "annotations_without_mask", [])
    if "segm" in iou_types and missing:
        raise ValueError("cannot score masks: {} annotations of {} have no polygon of 3 or more points (ids {}); "
                         "evaluate boxes only (MODEL.MASK_ON False) or give them a segmentation".format(
                             len(missing), getattr(dataset, "ann_file", "the dataset"),
                             ", ".join(map(str, missing[:5]))))


def do_coco_evaluation(dataset, predictions, box_only, output_folder, iou_types,
                       expected_results=(), expected_results_sigma_tol=4, coco_evaluator="pycocotools",
                       results_name=None, box_convention=DEFAULT_BOX_CONVENTION):
    """Evaluate and write ``predictions.pth``, ``bbox.json`` / ``segm.json`` and ``metrics.json``
    to ``output_folder`` (when given). Returns ``(results, coco_results)``: ``results`` is a
    COCOResults (``results["bbox"]["AP"]``), ``coco_results`` maps an iou type to its COCOeval
    result dicts. ``coco_evaluator``: "pycocotools" or "faster_coco_eval" (TEST.COCO_EVALUATOR).
    ``box_convention``: what the predicted corners mean (MODEL.BOX_CONVENTION of the model).

    For a dataset without annotations nothing is scored: the results files of the evaluation
    server are written instead (see ``write_server_results``; ``results_name`` names the method)."""
    _check_predictions(predictions, dataset)
    if output_folder:
        os.makedirs(output_folder, exist_ok=True)
        torch.save(list(predictions), os.path.join(output_folder, "predictions.pth"))
    if not getattr(dataset, "has_annotations", True):
        return write_server_results(dataset, predictions, output_folder, iou_types, results_name, box_convention)
    _check_masks_can_be_scored(dataset, iou_types)
    indices = evaluated_indices(predictions, dataset)
    image_ids = [dataset.id_to_img_map[i] for i in indices]

    if box_only:
        results = COCOResults("box_proposal")
        for limit in (100, 1000):
            for area, suffix in (("all", ""), ("small", "s"), ("medium", "m"), ("large", "l")):
                stats = evaluate_box_proposals(predictions, dataset, area=area, limit=limit,
                                               convention=box_convention)
                results.results["box_proposal"]["AR{}@{:d}".format(suffix, limit)] = stats["ar"]
        logger.info("box proposal recall: %s", dict(results.results["box_proposal"]))
        _write_metrics(output_folder, results)
        check_expected_results(results, expected_results, expected_results_sigma_tol)
        return results, {}

    prepare = {"bbox": prepare_for_coco_detection, "segm": prepare_for_coco_segmentation}
    coco_results = {}
    results = COCOResults(*iou_types)
    for iou_type in iou_types:
        if iou_type not in prepare:
            raise ValueError("iou type {!r} is not supported; use 'bbox' or 'segm'".format(iou_type))
        coco_results[iou_type] = prepare[iou_type](predictions, dataset, box_convention)
        json_file = os.path.join(output_folder, iou_type + ".json") if output_folder else None
        coco_eval = evaluate_predictions_on_coco(dataset.coco, coco_results[iou_type], json_file,
                                                 iou_type, image_ids=image_ids, evaluator=coco_evaluator)
        results.update(coco_eval)
        _log_per_class_table(iou_type, results.per_class[iou_type], len(dataset.coco.cats))
    logger.info("%s", results)
    _write_metrics(output_folder, results)
    check_expected_results(results, expected_results, expected_results_sigma_tol)
    return results, coco_results


def _server_split_name(ann_file):
    """"test-dev2017" for ".../image_info_test-dev2017.json"."""
    stem = os.path.splitext(os.path.basename(ann_file))[0]
    for prefix in ("image_info_", "instances_"):
        if stem.startswith(prefix):
            return stem[len(prefix):]
    return stem


def write_server_results(dataset, predictions, output_folder, iou_types, results_name=None,
                         box_convention=DEFAULT_BOX_CONVENTION):
    """Results of a split without annotations in the format of the COCO evaluation server: one
    json list per iou type, ``detections_<split>_<name>_results.json`` for boxes
    (``{image_id, category_id, bbox [x, y, w, h], score}``, original category ids and image
    size) and ``detections_<split>_<name>-segm_results.json`` for masks (``segmentation`` as RLE).
    ``name`` is ``results_name``, default the run folder (the parent of ``inference/``).
    Returns ``(COCOResults left at -1, {iou type: results})``."""
    if results_name is None:
        run_folder = os.path.dirname(os.path.dirname(os.path.abspath(output_folder))) if output_folder else ""
        results_name = os.path.basename(run_folder) or "maskrcnn_benchmark"
    split = _server_split_name(getattr(dataset, "ann_file", "test"))
    prepare = {"bbox": prepare_for_coco_detection, "segm": prepare_for_coco_segmentation}
    suffix = {"bbox": "", "segm": "-segm"}
    coco_results = {}
    for iou_type in iou_types:
        coco_results[iou_type] = prepare[iou_type](predictions, dataset, box_convention)
        if output_folder:
            path = os.path.join(output_folder, "detections_{}_{}{}_results.json".format(
                split, results_name, suffix[iou_type]))
            with open(path, "w") as f:
                json.dump(coco_results[iou_type], f)
            logger.info("%s has no annotations: wrote %d %s results for the evaluation server to %s",
                        getattr(dataset, "ann_file", "the dataset"), len(coco_results[iou_type]), iou_type, path)
    return COCOResults(*iou_types), coco_results


def _write_metrics(output_folder, results):
    if not output_folder:
        return
    per_class = {t: dict(table) for t, table in results.per_class.items()}
    payload = {"results": results.results, "per_class_ap": per_class}
    with open(os.path.join(output_folder, "metrics.json"), "w") as f:
        json.dump(payload, f, indent=2)
