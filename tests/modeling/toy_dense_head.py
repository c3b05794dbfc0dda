"""A toy dense head that lives outside the package: registered here, named by a yaml, trained by
tools/train_net.py (tests/modeling/test_custom_dense_head.py). It is the recipe of
docs/ARCHITECTURE.md, "Add a detector (dense head)": one module, one registration, the kit.

One point per feature-map cell; a point inside a box is a positive of the smallest such box; the
head predicts class logits and the distances (l, t, r, b) to the box sides; GIoU box loss. Its
settings come from the MODEL.FCOS group (a head of one's own reuses an existing group's keys).
"""
import torch
from torch import nn

from maskrcnn_benchmark.modeling import registry
from maskrcnn_benchmark.modeling.dense_heads.box_losses import box_overlap_loss, boxes_around_origin, zero_loss_through
from maskrcnn_benchmark.modeling.dense_heads.centerness import distances_to_box_sides
from maskrcnn_benchmark.modeling.dense_heads.classification import dense_classification_loss
from maskrcnn_benchmark.modeling.dense_heads.head import DenseHead, dense_head_config
from maskrcnn_benchmark.modeling.dense_heads.layout import flatten_levels
from maskrcnn_benchmark.modeling.dense_heads.points import PointGenerator, boxes_from_points
from maskrcnn_benchmark.modeling.dense_heads.postprocess import DensePostProcessor, class_probability
from maskrcnn_benchmark.modeling.dense_heads.tower import Scale, init_dense_head_, make_tower


class ToyConvs(nn.Module):
    """One GN tower shared by both outputs; distances = exp(scale_k * x) * stride_k (one stride at init)."""

    def __init__(self, in_channels, num_classes, strides, prior_prob):
        super().__init__()
        self.num_classes = num_classes
        self.strides = tuple(strides)
        self.tower = make_tower(in_channels, 1, use_gn=True, owner="toy head")
        self.cls_logits = nn.Conv2d(in_channels, num_classes, 3, padding=1)
        self.bbox_pred = nn.Conv2d(in_channels, 4, 3, padding=1)
        self.scales = nn.ModuleList(Scale() for _ in self.strides)
        init_dense_head_(self, self.cls_logits, prior_prob)

    def forward(self, features):
        logits, distances = [], []
        for level, feature in enumerate(features):
            x = self.tower(feature)
            logits.append(self.cls_logits(x))
            distances.append(torch.exp(self.scales[level](self.bbox_pred(x))) * self.strides[level])
        return logits, distances


@registry.DENSE_HEADS.register("ToyPoints")
class ToyPointsHead(DenseHead):
    config_group = "FCOS"

    def __init__(self, in_channels, num_classes, strides, settings, prior_prob=0.01, postprocess=None,
                 size_divisibility=0):
        head = ToyConvs(in_channels, num_classes, strides, prior_prob)
        super().__init__("toy", settings, head, PointGenerator(strides), size_divisibility)
        self.box_selector_test = DensePostProcessor(boxes_from_points, class_probability, **(postprocess or {}))

    @classmethod
    def from_config(cls, cfg, in_channels):
        fcos = cfg.MODEL.FCOS
        return dict(
            dense_head_config(cfg, fcos),  # Sampling-Free settings, post-processing, padding
            in_channels=in_channels,
            num_classes=fcos.NUM_CLASSES - 1,
            strides=tuple(fcos.FPN_STRIDES),
            prior_prob=fcos.PRIOR_PROB,
        )

    def assign(self, points_per_level, target):
        """Labels (class of the smallest box holding the point, 0 elsewhere) and (l, t, r, b)."""
        points = torch.cat(points_per_level)
        boxes, box_labels = target.convert("xyxy").bbox, target.get_field("labels")
        if len(boxes) == 0:
            return torch.zeros(len(points), dtype=torch.int64, device=points.device), points.new_zeros(len(points), 4)
        ltrb = distances_to_box_sides(points[:, None], boxes[None])  # [P, B, 4]
        areas = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).expand(len(points), -1)
        areas = torch.where(ltrb.min(dim=2).values > 0, areas, torch.full_like(areas, float("inf")))
        smallest, box = areas.min(dim=1)
        labels = torch.where(torch.isfinite(smallest), box_labels[box].to(torch.int64), torch.zeros_like(box))
        return labels, ltrb[torch.arange(len(points), device=points.device), box]

    def losses(self, predictions, points_per_level, targets):
        logits, distances = predictions
        labels, ltrb = (torch.stack(t) for t in zip(*(self.assign(points_per_level, t) for t in targets)))
        loss_cls, normalizer = dense_classification_loss(
            self.hard_strategy, self.soft_strategy, flatten_levels(logits, self.num_foreground_classes), labels
        )
        predicted = flatten_levels(distances, 4).reshape(-1, 4)
        positive = labels.reshape(-1) > 0
        if not bool(positive.any()):
            return self.scaled_losses("loss_toy_cls", loss_cls, "loss_toy_box", zero_loss_through(predicted))
        loss_box = box_overlap_loss(
            boxes_around_origin(predicted[positive]), boxes_around_origin(ltrb.reshape(-1, 4)[positive]), "giou"
        ).sum() / normalizer
        return self.scaled_losses("loss_toy_cls", loss_cls, "loss_toy_box", loss_box)

    def classification_layer(self):
        return self.head.cls_logits
