"""Adaptive training sample selection (ATSS, Zhang et al. 2020, Alg. 1).

For every ground-truth box: on each pyramid level take the ``topk`` anchors whose centres are
closest to the box centre; the IoU threshold of that box is mean + std of those candidates' IoUs;
candidates at or above it whose centre lies inside the box are its positives. An anchor claimed by
several boxes goes to the one it overlaps most.
"""
import torch

from maskrcnn_benchmark.modeling.dense_heads.centerness import centerness_targets, distances_to_box_sides
from maskrcnn_benchmark.structures.box_convention import DEFAULT_BOX_CONVENTION, box_convention


def box_centers(boxes):
    return (boxes[:, :2] + boxes[:, 2:]) / 2


def anchor_centerness(anchors, gt_boxes):
    """Centre-ness of each anchor's centre in its matched box (ATSS's quality target)."""
    return centerness_targets(distances_to_box_sides(box_centers(anchors), gt_boxes))


def select_atss_positives(anchors_per_level, gt_boxes, topk, convention=DEFAULT_BOX_CONVENTION):
    """Index of the matched ground-truth box per anchor (levels concatenated), -1 for background.

    ``anchors_per_level``: list of ``[A_l, 4]`` tensors; ``gt_boxes``: ``[G, 4]``; IoUs in the box
    ``convention``.
    """
    anchors = torch.cat(list(anchors_per_level), dim=0)
    num_anchors, num_gt = anchors.shape[0], gt_boxes.shape[0]
    matched = torch.full((num_anchors,), -1, dtype=torch.long, device=anchors.device)
    if num_gt == 0 or num_anchors == 0:
        return matched

    ious = box_convention(convention).pairwise_iou(anchors, gt_boxes)  # [A, G]
    anchor_centers = box_centers(anchors)
    distances = torch.cdist(anchor_centers, box_centers(gt_boxes))  # [A, G]

    candidates = []
    start = 0
    for level_anchors in anchors_per_level:
        count = level_anchors.shape[0]
        k = min(topk, count)
        if k > 0:
            _, nearest = distances[start:start + count].topk(k, dim=0, largest=False)
            candidates.append(nearest + start)
        start += count
    candidates = torch.cat(candidates, dim=0)  # [K, G] anchor indices, one column per box

    candidate_ious = ious.gather(0, candidates)
    # Unbiased std as in the ATSS paper's reference; a single candidate has no spread.
    spread = candidate_ious.std(dim=0) if candidates.shape[0] > 1 else torch.zeros_like(candidate_ious[0])
    thresholds = candidate_ious.mean(dim=0) + spread
    is_positive = candidate_ious >= thresholds[None, :]

    centers_x = anchor_centers[:, 0][candidates]
    centers_y = anchor_centers[:, 1][candidates]
    inside = (
        (centers_x > gt_boxes[:, 0]) & (centers_x < gt_boxes[:, 2])
        & (centers_y > gt_boxes[:, 1]) & (centers_y < gt_boxes[:, 3])
    )
    is_positive &= inside

    # IoU of every (anchor, box) pair that was selected, -inf elsewhere; each anchor then takes
    # the box it overlaps most among those that selected it.
    selected_ious = torch.full_like(ious, float("-inf"))
    gt_index = torch.arange(num_gt, device=anchors.device).expand_as(candidates)
    rows, cols = candidates[is_positive], gt_index[is_positive]
    selected_ious[rows, cols] = ious[rows, cols]
    best_iou, best_gt = selected_ious.max(dim=1)
    matched = torch.where(torch.isfinite(best_iou), best_gt, matched)
    return matched
