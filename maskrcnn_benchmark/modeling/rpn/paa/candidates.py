"""Candidate anchors of PAA's probabilistic assignment (Kim & Lee, ECCV 2020), as its public code
selects them.

1. IoU pre-assignment (``iou_pre_assignment``): an anchor goes to the box it overlaps most when that
   IoU reaches ``iou_threshold`` (MODEL.PAA.IOU_THRESHOLD, 0.1), to no box otherwise; then every
   anchor tied at some box's best IoU is assigned too (to the box it overlaps most), so that a box
   no anchor reaches the threshold for still has anchors. A small box inside several anchors of
   one shape has all of them tied at its best IoU, and keeps all of them.
2. Candidates (``select_paa_candidates``): per box and per pyramid level, the ``topk`` anchors
   pre-assigned to it with the LOWEST score, the loss each would get as the box's positive
   (classification + box loss of the current prediction; see loss.py).
"""
import torch

from maskrcnn_benchmark.structures.box_convention import DEFAULT_BOX_CONVENTION, box_convention

UNASSIGNED = -1


def iou_pre_assignment(anchors, gt_boxes, iou_threshold, convention=DEFAULT_BOX_CONVENTION):
    """``[A]`` LongTensor: the box each anchor is pre-assigned to, or -1 (IoUs in the box
    ``convention``)."""
    if gt_boxes.shape[0] == 0 or anchors.shape[0] == 0:
        return torch.full((anchors.shape[0],), UNASSIGNED, dtype=torch.long, device=anchors.device)
    ious = box_convention(convention).pairwise_iou(anchors, gt_boxes)  # [A, G]
    best_iou, best_box = ious.max(dim=1)
    assigned = torch.where(best_iou >= iou_threshold, best_box, torch.full_like(best_box, UNASSIGNED))
    # A box without any overlap (degenerate, or outside the image) has no best anchor to keep.
    box_best = ious.max(dim=0).values
    tied = ((ious == box_best[None, :]) & (box_best[None, :] > 0)).any(dim=1)
    assigned[tied] = best_box[tied]
    return assigned


def select_paa_candidates(level_sizes, assigned, scores, num_boxes, topk):
    """``(anchor_index, box_index)``, two aligned LongTensors: per box, on each level (``level_sizes``
    anchors each, in order), the ``topk`` anchors ``assigned`` to it with the lowest ``scores``."""
    anchor_index, box_index = [], []
    boxes = torch.arange(num_boxes, device=assigned.device)
    start = 0
    for count in level_sizes:
        level_assigned = assigned[start:start + count]
        if count > 0 and num_boxes > 0:
            own = level_assigned[:, None] == boxes[None, :]  # [A_l, G]
            level_scores = torch.where(own, scores[start:start + count, None], torch.full_like(own, float("inf"),
                                                                                                 dtype=scores.dtype))
            values, nearest = level_scores.topk(min(topk, count), dim=0, largest=False)  # [k, G]
            keep = torch.isfinite(values)
            anchor_index.append((nearest + start)[keep])
            box_index.append(boxes.expand_as(nearest)[keep])
        start += count
    if not anchor_index:
        empty = torch.zeros(0, dtype=torch.long, device=assigned.device)
        return empty, empty.clone()
    return torch.cat(anchor_index), torch.cat(box_index)
