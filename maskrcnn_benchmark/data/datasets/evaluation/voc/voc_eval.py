"""PASCAL VOC detection mAP: per-class precision / recall and AP (11-point 2007 metric or the
area under the interpolated precision-recall curve). Objects marked difficult are neither counted
as positives nor penalised when detected. IoU follows the project's box convention (no +1)."""
import json
import logging
import os

import numpy as np
import torch
from torchvision.ops import box_iou


def calc_detection_voc_prec_rec(gt_boxlists, pred_boxlists, iou_thresh=0.5):
    """Per class id: precision and recall arrays over the detections ranked by score (None for
    classes absent from both gt and predictions)."""
    n_pos, scores, matches = {}, {}, {}
    for gt_boxlist, pred_boxlist in zip(gt_boxlists, pred_boxlists):
        gt_boxes = gt_boxlist.convert("xyxy").bbox
        gt_labels = gt_boxlist.get_field("labels")
        gt_difficult = (gt_boxlist.get_field("difficult") if gt_boxlist.has_field("difficult")
                        else torch.zeros(len(gt_boxlist), dtype=torch.bool))
        pred_boxes = pred_boxlist.convert("xyxy").bbox
        pred_labels = pred_boxlist.get_field("labels")
        pred_scores = pred_boxlist.get_field("scores")
        for label in torch.cat([gt_labels, pred_labels]).unique().tolist():
            is_pred = pred_labels == label
            boxes, label_scores = pred_boxes[is_pred], pred_scores[is_pred]
            order = torch.argsort(label_scores, descending=True, stable=True)
            boxes, label_scores = boxes[order], label_scores[order]
            is_gt = gt_labels == label
            gt_l, difficult_l = gt_boxes[is_gt], gt_difficult[is_gt]
            n_pos[label] = n_pos.get(label, 0) + int((~difficult_l).sum())
            scores.setdefault(label, []).extend(label_scores.tolist())
            matches.setdefault(label, []).extend(_match(boxes, gt_l, difficult_l, iou_thresh))

    num_classes = max(list(n_pos) + [0]) + 1
    prec, rec = [None] * num_classes, [None] * num_classes
    for label in n_pos:
        order = np.argsort(-np.asarray(scores[label]), kind="stable")
        match = np.asarray(matches[label], dtype=np.int64)[order]
        tp = np.cumsum(match == 1)
        fp = np.cumsum(match == 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            prec[label] = tp / (fp + tp)
            rec[label] = tp / n_pos[label] if n_pos[label] > 0 else None
    return prec, rec


def _match(pred_boxes, gt_boxes, gt_difficult, iou_thresh):
    """1 true positive, 0 false positive, -1 ignored (matched a difficult object), per
    detection in decreasing score order; each gt is matched at most once."""
    if len(pred_boxes) == 0:
        return []
    if len(gt_boxes) == 0:
        return [0] * len(pred_boxes)
    iou = box_iou(pred_boxes.float(), gt_boxes.float())
    best_iou, best_gt = iou.max(dim=1)
    taken = torch.zeros(len(gt_boxes), dtype=torch.bool)
    result = []
    for overlap, gt in zip(best_iou.tolist(), best_gt.tolist()):
        if overlap < iou_thresh:
            result.append(0)
        elif gt_difficult[gt]:
            result.append(-1)
        elif not taken[gt]:
            result.append(1)
            taken[gt] = True
        else:
            result.append(0)
    return result


def calc_detection_voc_ap(prec, rec, use_07_metric=False):
    """AP per class (nan where undefined)."""
    ap = np.full(len(prec), np.nan)
    for label, (p, r) in enumerate(zip(prec, rec)):
        if p is None or r is None:
            continue
        if use_07_metric:
            # mean of the best precision at recall >= 0, 0.1, ..., 1
            ap[label] = sum(np.max(np.nan_to_num(p)[r >= t]) if np.any(r >= t) else 0.0
                            for t in np.arange(0.0, 1.1, 0.1)) / 11.0
        else:
            mpre = np.concatenate(([0.0], np.nan_to_num(p), [0.0]))
            mrec = np.concatenate(([0.0], r, [1.0]))
            mpre = np.maximum.accumulate(mpre[::-1])[::-1]  # precision envelope
            steps = np.where(mrec[1:] != mrec[:-1])[0]
            ap[label] = np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1])
    return ap


def eval_detection_voc(pred_boxlists, gt_boxlists, iou_thresh=0.5, use_07_metric=False):
    """``{"ap": per class id array (nan for absent classes), "map": nanmean}``."""
    if len(pred_boxlists) != len(gt_boxlists):
        raise ValueError("got {} prediction and {} ground-truth BoxLists; they must pair up".format(
            len(pred_boxlists), len(gt_boxlists)))
    prec, rec = calc_detection_voc_prec_rec(gt_boxlists, pred_boxlists, iou_thresh)
    ap = calc_detection_voc_ap(prec, rec, use_07_metric=use_07_metric)
    valid = ap[~np.isnan(ap)]
    return {"ap": ap, "map": float(valid.mean()) if valid.size else float("nan")}


def do_voc_evaluation(dataset, predictions, output_folder, logger=None):
    """mAP at IoU 0.5 with the 2007 11-point metric (``map``) and the area metric
    (``map_area``); writes result.txt and metrics.json to ``output_folder`` when given."""
    logger = logger or logging.getLogger(__name__)
    if len(predictions) != len(dataset):
        raise ValueError("got {} predictions for a dataset of {} images".format(
            len(predictions), len(dataset)))
    gt_boxlists, pred_boxlists = [], []
    left_out = [dataset.get_img_info(i).get("file_name", i) for i, p in enumerate(predictions) if p is None]
    if left_out:  # unreadable images (DATALOADER.SKIP_CORRUPT_IMAGES): neither scored nor counted
        logger.warning("%d of %d images are left out of the evaluation (unreadable): %s", len(left_out),
                       len(predictions), ", ".join(map(str, left_out[:10])))
    for index, prediction in enumerate(predictions):
        if prediction is None:
            continue
        info = dataset.get_img_info(index)
        pred_boxlists.append(prediction.resize((info["width"], info["height"])))
        gt_boxlists.append(dataset.get_groundtruth(index))
    result = eval_detection_voc(pred_boxlists, gt_boxlists, iou_thresh=0.5, use_07_metric=True)
    area = eval_detection_voc(pred_boxlists, gt_boxlists, iou_thresh=0.5, use_07_metric=False)
    result["map_area"], result["ap_area"] = area["map"], area["ap"]

    lines = ["mAP (VOC07 11-point): {:.4f}".format(result["map"]),
             "mAP (area): {:.4f}".format(result["map_area"])]
    per_class = {}
    for class_id, ap in enumerate(result["ap"]):
        if class_id == 0 or np.isnan(ap):
            continue
        name = dataset.map_class_id_to_class_name(class_id)
        per_class[name] = float(ap)
        lines.append("{:<16s}: {:.4f}".format(name, ap))
    logger.info("\n".join(lines))
    if output_folder:
        os.makedirs(output_folder, exist_ok=True)
        with open(os.path.join(output_folder, "result.txt"), "w") as f:
            f.write("\n".join(lines) + "\n")
        with open(os.path.join(output_folder, "metrics.json"), "w") as f:
            json.dump({"mAP": result["map"], "mAP_area": result["map_area"], "per_class_ap": per_class},
                      f, indent=2)
    return result
