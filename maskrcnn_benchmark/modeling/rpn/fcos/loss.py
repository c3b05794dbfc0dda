"""FCOS training targets and losses.

Assignment (FCOS, Tian et al. 2019): a point is a positive for a box when it lies inside the box
(or, with CENTER_SAMPLING_RADIUS r > 0, inside the box's central square of half-side r * stride,
clipped to the box) and the largest of its distances (l, t, r, b) to the box sides falls in its
level's size range; a point that qualifies for several boxes takes the smallest one. There are no
ignored points.

Losses: classification (focal or CE) summed over all points and classes / number of positives;
IoU loss ("iou": -log IoU, "giou": 1 - GIoU) over positives, weighted by their centerness target
and divided by the sum of those weights; centerness BCE over positives / number of positives. Every
normaliser is at least 1 (or the loss is an exact zero), so a batch without boxes stays finite.
"""
import torch
import torch.nn.functional as F

from maskrcnn_benchmark.modeling.rpn.retinanet.classification_loss import (
    make_one_stage_classification_loss,
)

INF = float("inf")
# Upper bound of max(l, t, r, b) on P3..P7; level k covers (SIZE_BOUNDS[k], SIZE_BOUNDS[k + 1]].
SIZE_BOUNDS = (0.0, 64.0, 128.0, 256.0, 512.0, INF)
IOU_LOSS_TYPES = ("iou", "giou")


def centerness_targets(ltrb):
    """sqrt(min(l, r) / max(l, r) * min(t, b) / max(t, b)) for positive distances [K, 4]."""
    left_right = ltrb[:, [0, 2]]
    top_bottom = ltrb[:, [1, 3]]
    ratio = (left_right.min(dim=1).values / left_right.max(dim=1).values) * (
        top_bottom.min(dim=1).values / top_bottom.max(dim=1).values
    )
    return torch.sqrt(ratio)


def iou_loss(pred, target, loss_type):
    """Per-sample IoU loss of two boxes given as distances (l, t, r, b) from the same point.

    IoU is smoothed as (I + 1) / (U + 1), as in FCOS, so that a degenerate prediction still has a
    gradient; distances are in the units the head regresses (pixels, or strides when normalised).
    """
    pred_area = (pred[:, 0] + pred[:, 2]) * (pred[:, 1] + pred[:, 3])
    target_area = (target[:, 0] + target[:, 2]) * (target[:, 1] + target[:, 3])
    inter_w = torch.min(pred[:, 0], target[:, 0]) + torch.min(pred[:, 2], target[:, 2])
    inter_h = torch.min(pred[:, 1], target[:, 1]) + torch.min(pred[:, 3], target[:, 3])
    inter = inter_w * inter_h
    union = pred_area + target_area - inter
    iou = (inter + 1.0) / (union + 1.0)
    if loss_type == "iou":
        return -torch.log(iou)
    if loss_type == "giou":
        enclose_w = torch.max(pred[:, 0], target[:, 0]) + torch.max(pred[:, 2], target[:, 2])
        enclose_h = torch.max(pred[:, 1], target[:, 1]) + torch.max(pred[:, 3], target[:, 3])
        enclose = enclose_w * enclose_h + 1e-7
        return 1.0 - (iou - (enclose - union) / enclose)
    raise ValueError("MODEL.FCOS.IOU_LOSS_TYPE must be one of {}, got {!r}".format(IOU_LOSS_TYPES, loss_type))


def assign_points_to_boxes(points, size_bounds, point_strides, boxes, box_labels, center_radius):
    """Labels [M] (class, or 0 for background) and regression targets [M, 4] (l, t, r, b).

    points [M, 2]: (x, y); size_bounds [M, 2]: (low, high) of each point's level; point_strides [M];
    boxes [B, 4] xyxy; box_labels [B].
    """
    num_points = points.shape[0]
    if boxes.shape[0] == 0:
        return (torch.zeros(num_points, dtype=torch.int64, device=points.device),
                points.new_zeros((num_points, 4)))
    x = points[:, 0, None]
    y = points[:, 1, None]
    ltrb = torch.stack(
        (x - boxes[:, 0], y - boxes[:, 1], boxes[:, 2] - x, boxes[:, 3] - y), dim=2
    )  # [M, B, 4]

    if center_radius > 0:
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

    areas = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))[None, :].expand(num_points, -1)
    areas = torch.where(inside & in_range, areas, torch.full_like(areas, INF))
    smallest_area, box_idx = areas.min(dim=1)

    labels = box_labels[box_idx].to(torch.int64)
    labels[smallest_area == INF] = 0
    reg_targets = ltrb[torch.arange(num_points, device=points.device), box_idx]
    return labels, reg_targets


class FCOSLossComputation(object):
    def __init__(self, cls_loss_func, strides, center_sampling_radius, iou_loss_type, norm_reg_targets):
        if len(strides) != len(SIZE_BOUNDS) - 1:
            raise ValueError(
                "MODEL.FCOS.FPN_STRIDES must have {} levels (P3-P7), got {}".format(len(SIZE_BOUNDS) - 1, strides)
            )
        if iou_loss_type not in IOU_LOSS_TYPES:
            raise ValueError(
                "MODEL.FCOS.IOU_LOSS_TYPE must be one of {}, got {!r}".format(IOU_LOSS_TYPES, iou_loss_type)
            )
        self.cls_loss_func = cls_loss_func
        self.strides = tuple(strides)
        self.center_sampling_radius = center_sampling_radius
        self.iou_loss_type = iou_loss_type
        self.norm_reg_targets = norm_reg_targets

    def level_attributes(self, locations):
        """Per point of all levels concatenated: its size bounds [M, 2] and stride [M]."""
        bounds, strides = [], []
        for level, points in enumerate(locations):
            count = points.shape[0]
            bounds.append(points.new_tensor(SIZE_BOUNDS[level:level + 2]).expand(count, 2))
            strides.append(points.new_full((count,), float(self.strides[level])))
        return torch.cat(bounds), torch.cat(strides)

    def prepare_targets(self, locations, targets):
        """Labels [N, M] and (l, t, r, b) targets [N, M, 4]; M = points of all levels."""
        points = torch.cat(locations, dim=0)
        bounds, strides = self.level_attributes(locations)
        labels, reg_targets = [], []
        for target in targets:
            target = target.convert("xyxy")
            labels_i, reg_i = assign_points_to_boxes(
                points, bounds, strides, target.bbox, target.get_field("labels"), self.center_sampling_radius
            )
            labels.append(labels_i)
            reg_targets.append(reg_i)
        return torch.stack(labels), torch.stack(reg_targets)

    def __call__(self, locations, box_cls, box_regression, centerness, targets):
        """Predictions per level: box_cls [N, C, H, W], box_regression [N, 4, H, W] (pixel
        distances), centerness [N, 1, H, W]. Returns (cls_loss, reg_loss, centerness_loss)."""
        num_classes = box_cls[0].shape[1]
        labels, reg_targets = self.prepare_targets(locations, targets)
        _, point_strides = self.level_attributes(locations)

        cls_flat = torch.cat([flatten_level(c) for c in box_cls], dim=1).reshape(-1, num_classes)
        reg_flat = torch.cat([flatten_level(r) for r in box_regression], dim=1).reshape(-1, 4)
        ctr_flat = torch.cat([flatten_level(c) for c in centerness], dim=1).reshape(-1)
        labels = labels.reshape(-1)
        reg_targets = reg_targets.reshape(-1, 4)
        point_strides = point_strides.repeat(len(targets))

        positive = labels > 0
        num_positive = int(positive.sum())
        cls_loss = self.cls_loss_func(cls_flat, labels.int()) / max(num_positive, 1)

        reg_pred, reg_target, ctr_pred = reg_flat[positive], reg_targets[positive], ctr_flat[positive]
        if num_positive == 0:
            # Zero that keeps the graph, so every parameter still receives a (zero) gradient.
            return cls_loss, reg_pred.sum() * 0.0, ctr_pred.sum() * 0.0

        if self.norm_reg_targets:
            # The head regresses in units of its level's stride; the smoothed IoU is taken there.
            unit = point_strides[positive][:, None]
            reg_pred, reg_target = reg_pred / unit, reg_target / unit
        ctr_target = centerness_targets(reg_target)
        per_sample = iou_loss(reg_pred, reg_target, self.iou_loss_type)
        reg_loss = (per_sample * ctr_target).sum() / ctr_target.sum().clamp(min=1e-6)
        ctr_loss = F.binary_cross_entropy_with_logits(ctr_pred, ctr_target, reduction="sum") / num_positive
        return cls_loss, reg_loss, ctr_loss


def flatten_level(x):
    """[N, K, H, W] -> [N, H*W, K], points in row-major order like the locations."""
    n, k, h, w = x.shape
    return x.permute(0, 2, 3, 1).reshape(n, h * w, k)


def make_fcos_loss_evaluator(cfg):
    fcos_cfg = cfg.MODEL.FCOS
    cls_loss = make_one_stage_classification_loss(
        cfg.MODEL.SAMPLING_FREE.ONE_STAGE.CLS_LOSS, fcos_cfg.LOSS_GAMMA, fcos_cfg.LOSS_ALPHA
    )
    return FCOSLossComputation(
        cls_loss,
        fcos_cfg.FPN_STRIDES,
        fcos_cfg.CENTER_SAMPLING_RADIUS,
        fcos_cfg.IOU_LOSS_TYPE,
        fcos_cfg.NORM_REG_TARGETS,
    )
