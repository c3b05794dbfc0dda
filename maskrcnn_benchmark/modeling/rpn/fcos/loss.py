"""FCOS training targets and losses.

Assignment (FCOS, Tian et al. 2019): a point is a positive for a box when it lies inside the box
(or, with CENTER_SAMPLING_RADIUS r > 0, inside the box's central square of half-side r * stride,
clipped to the box) and the largest of its distances (l, t, r, b) to the box sides falls in its
level's size range; a point that qualifies for several boxes takes the smallest one. There are no
ignored points.

Losses: classification (the soft strategy: focal or CE) over the points the hard strategy trains
("all": every point) / number of positives; IoU loss ("iou": -log IoU, "giou": 1 - GIoU, IoU
smoothed as (I + 1) / (U + 1)) over positives, weighted by their centre-ness target and divided by
the sum of those weights; centre-ness BCE over positives / number of positives. Divisors are
averaged over processes and at least 1 (1e-6 for the weight sum), or the loss is an exact zero, so a
batch without boxes stays finite.
"""
import torch
import torch.nn.functional as F

from maskrcnn_benchmark.modeling.dense_heads.box_losses import (
    box_overlap_loss,
    boxes_around_origin,
    check_box_loss_kind,
)
from maskrcnn_benchmark.modeling.dense_heads.centerness import centerness_targets, distances_to_box_sides
from maskrcnn_benchmark.modeling.dense_heads.classification import dense_classification_loss
from maskrcnn_benchmark.modeling.dense_heads.layout import flatten_levels
from maskrcnn_benchmark.modeling.dense_heads.normalizer import cross_process_normalizer
from maskrcnn_benchmark.modeling.sample_strategy import AllSamples
from maskrcnn_benchmark.structures.box_convention import DEFAULT_BOX_CONVENTION, box_convention

INF = float("inf")
# Upper bound of max(l, t, r, b) on P3..P7; level k covers (SIZE_BOUNDS[k], SIZE_BOUNDS[k + 1]].
SIZE_BOUNDS = (0.0, 64.0, 128.0, 256.0, 512.0, INF)


def assign_points_to_boxes(points, size_bounds, point_strides, boxes, box_labels, center_radius,
                           convention=DEFAULT_BOX_CONVENTION):
    """Labels [M] (class, or 0 for background) and regression targets [M, 4] (l, t, r, b).

    points [M, 2]: (x, y); size_bounds [M, 2]: (low, high) of each point's level; point_strides [M];
    boxes [B, 4] xyxy; box_labels [B]. A point inside several boxes takes the smallest by its area
    in ``convention``.
    """
    num_points = points.shape[0]
    if boxes.shape[0] == 0:
        return (torch.zeros(num_points, dtype=torch.int64, device=points.device),
                points.new_zeros((num_points, 4)))
    ltrb = distances_to_box_sides(points[:, None, :], boxes[None, :, :])  # [M, B, 4]

    if center_radius > 0:
        x, y = points[:, 0, None], points[:, 1, None]
        center_x = (boxes[:, 0] + boxes[:, 2]) / 2
        center_y = (boxes[:, 1] + boxes[:, 3]) / 2
        half_side = point_strides[:, None] * center_radius
        region_x1 = torch.max(center_x - half_side, boxes[:, 0])
        region_y1 = torch.max(center_y - half_side, boxes[:, 1])
        region_x2 = torch.min(center_x + half_side, boxes[:, 2])
        region_y2 = torch.min(center_y + half_side, boxes[:, 3])
        inside = (x > region_x1) & (y > region_y1) & (x < region_x2) & (y < region_y2)
    else:
        inside = ltrb.min(dim=2).values > 0

    largest_side = ltrb.max(dim=2).values
    in_range = (largest_side >= size_bounds[:, 0, None]) & (largest_side <= size_bounds[:, 1, None])

    areas = box_convention(convention).areas(boxes)[None, :].expand(num_points, -1)
    areas = torch.where(inside & in_range, areas, torch.full_like(areas, INF))
    smallest_area, box_idx = areas.min(dim=1)

    labels = box_labels[box_idx].to(torch.int64)
    labels[smallest_area == INF] = 0
    reg_targets = ltrb[torch.arange(num_points, device=points.device), box_idx]
    return labels, reg_targets


class FCOSLossComputation(object):
    """``cls_loss_func``: the classification loss (the head's soft strategy, ``(logits, labels) ->
    summed loss``); ``hard_strategy``: which points it trains (default "all")."""

    def __init__(self, cls_loss_func, strides, center_sampling_radius, iou_loss_type, norm_reg_targets,
                 hard_strategy=None, convention=DEFAULT_BOX_CONVENTION):
        if len(strides) != len(SIZE_BOUNDS) - 1:
            raise ValueError(
                "MODEL.FCOS.FPN_STRIDES must have {} levels (P3-P7), got {}".format(len(SIZE_BOUNDS) - 1, strides)
            )
        check_box_loss_kind(iou_loss_type, "MODEL.FCOS.IOU_LOSS_TYPE")
        self.cls_loss_func = cls_loss_func
        self.hard_strategy = hard_strategy or AllSamples()
        self.strides = tuple(strides)
        self.center_sampling_radius = center_sampling_radius
        self.iou_loss_type = iou_loss_type
        self.norm_reg_targets = norm_reg_targets
        self.convention = box_convention(convention)

    def level_attributes(self, locations):
        """Per point of all levels concatenated: its size bounds [M, 2] and stride [M]."""
        bounds, strides = [], []
        for level, points in enumerate(locations):
            count = points.shape[0]
            bounds.append(points.new_tensor(SIZE_BOUNDS[level:level + 2]).expand(count, 2))
            strides.append(points.new_full((count,), float(self.strides[level])))
        return torch.cat(bounds), torch.cat(strides)

    def assign(self, locations, target):
        """One image: labels [M] and (l, t, r, b) targets [M, 4] for the points of all levels."""
        bounds, strides = self.level_attributes(locations)
        target = target.convert("xyxy")
        return assign_points_to_boxes(
            torch.cat(locations, dim=0), bounds, strides, target.bbox, target.get_field("labels"),
            self.center_sampling_radius, self.convention,
        )

    def prepare_targets(self, locations, targets):
        """Labels [N, M] and (l, t, r, b) targets [N, M, 4]; M = points of all levels."""
        labels, reg_targets = zip(*(self.assign(locations, target) for target in targets))
        return torch.stack(labels), torch.stack(reg_targets)

    def __call__(self, locations, box_cls, box_regression, centerness, targets):
        """Predictions per level: box_cls [N, C, H, W], box_regression [N, 4, H, W] (pixel
        distances), centerness [N, 1, H, W]. Returns (cls_loss, reg_loss, centerness_loss)."""
        num_classes = box_cls[0].shape[1]
        labels, reg_targets = self.prepare_targets(locations, targets)
        _, point_strides = self.level_attributes(locations)
        loss_cls, normaliser = dense_classification_loss(
            self.hard_strategy, self.cls_loss_func, flatten_levels(box_cls, num_classes), labels
        )

        positive = labels.reshape(-1) > 0
        reg_pred = flatten_levels(box_regression, 4).reshape(-1, 4)[positive]
        ctr_pred = flatten_levels(centerness, 1).reshape(-1)[positive]
        if not bool(positive.any()):
            # Zero that keeps the graph, so every parameter still receives a (zero) gradient.
            return loss_cls, reg_pred.sum() * 0.0, ctr_pred.sum() * 0.0

        reg_target = reg_targets.reshape(-1, 4)[positive]
        if self.norm_reg_targets:
            # The head regresses in units of its level's stride; the smoothed IoU is taken there.
            unit = point_strides.repeat(len(targets))[positive][:, None]
            reg_pred, reg_target = reg_pred / unit, reg_target / unit
        ctr_target = centerness_targets(reg_target)
        per_sample = box_overlap_loss(
            boxes_around_origin(reg_pred), boxes_around_origin(reg_target), self.iou_loss_type, smooth=1.0
        )
        reg_loss = (per_sample * ctr_target).sum() / cross_process_normalizer(ctr_target.sum(), minimum=1e-6)
        ctr_loss = F.binary_cross_entropy_with_logits(ctr_pred, ctr_target, reduction="sum") / normaliser
        return loss_cls, reg_loss, ctr_loss
