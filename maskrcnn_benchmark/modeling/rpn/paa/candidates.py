"""Candidate anchors of PAA's probabilistic assignment.

Every anchor belongs to the box it overlaps most, provided that IoU reaches ``iou_threshold``
(MODEL.PAA.IOU_THRESHOLD); in addition each box keeps its single best anchor even below the
threshold, so that no box is left without candidates (the low-quality match of the usual
Matcher). Per box, on each pyramid level, the ``topk`` anchors it owns with the highest IoU are its
candidates. The mixture fit then decides which candidates are positive; without it (as used for
counting samples for the optimal bias) all candidates count as positive.
"""
import torch
from torchvision.ops import box_iou


def select_paa_candidates(anchors_per_level, gt_boxes, iou_threshold, topk):
    """``(anchor_index, gt_index)``: two aligned 1-D LongTensors, one entry per candidate."""
    anchors = torch.cat(list(anchors_per_level), dim=0)
    device = anchors.device
    empty = torch.zeros(0, dtype=torch.long, device=device)
    num_gt = gt_boxes.shape[0]
    if num_gt == 0 or anchors.shape[0] == 0:
        return empty, empty

    ious = box_iou(anchors, gt_boxes)  # [A, G]
    best_iou, owner = ious.max(dim=1)
    owned = best_iou >= iou_threshold
    best_anchor_of_box = ious.argmax(dim=0)  # [G]
    has_overlap = ious.max(dim=0).values > 0
    owner[best_anchor_of_box[has_overlap]] = torch.arange(num_gt, device=device)[has_overlap]
    owned[best_anchor_of_box[has_overlap]] = True

    box_ids = torch.arange(num_gt, device=device)
    owned_by_box = owned[:, None] & (owner[:, None] == box_ids[None, :])  # [A, G]
    owned_ious = torch.where(owned_by_box, ious, torch.full_like(ious, -1.0))

    anchor_index, gt_index = [], []
    start = 0
    for level_anchors in anchors_per_level:
        count = level_anchors.shape[0]
        k = min(topk, count)
        if k > 0:
            values, nearest = owned_ious[start:start + count].topk(k, dim=0)  # [k, G]
            keep = values >= 0
            anchor_index.append((nearest + start)[keep])
            gt_index.append(box_ids.expand_as(nearest)[keep])
        start += count
    if not anchor_index:
        return empty, empty
    return torch.cat(anchor_index), torch.cat(gt_index)
