"""FCOS: points per level, point assignment (size ranges, ambiguity, center sampling), IoU /
centerness / classification losses against direct formulas, inference and the optimal-bias counting."""
import math

import pytest
import torch
from torchvision.ops import box_iou, generalized_box_iou, sigmoid_focal_loss

from maskrcnn_benchmark.config import cfg as default_cfg
from maskrcnn_benchmark.modeling.dense_heads.box_losses import box_overlap_loss, boxes_around_origin
from maskrcnn_benchmark.modeling.dense_heads.centerness import centerness_targets
from maskrcnn_benchmark.modeling.dense_heads.points import locations_for_level, locations_for_sizes
from maskrcnn_benchmark.modeling.rpn.fcos.fcos import build_fcos
from maskrcnn_benchmark.modeling.rpn.fcos.inference import fcos_postprocessor
from maskrcnn_benchmark.modeling.rpn.fcos.loss import SIZE_BOUNDS, assign_points_to_boxes

from helpers import fpn_features, target_boxlist

NUM_CLASSES = 3
STRIDES = (8, 16, 32, 64, 128)


def small_cfg(cls_loss="focal", guided="none", **fcos):
    cfg = default_cfg.clone()
    cfg.MODEL.FCOS_ON = True
    cfg.MODEL.FCOS.NUM_CLASSES = NUM_CLASSES + 1
    cfg.MODEL.FCOS.NUM_CONVS = 1
    for key, value in fcos.items():
        cfg.MODEL.FCOS[key] = value
    cfg.MODEL.SAMPLING_FREE.ONE_STAGE.CLS_LOSS = cls_loss
    cfg.MODEL.SAMPLING_FREE.ONE_STAGE.GUIDED = guided
    cfg.DATALOADER.SIZE_DIVISIBILITY = 32
    return cfg


def test_points_per_level():
    assert locations_for_level(2, 3, 8).tolist() == [[4, 4], [12, 4], [20, 4], [4, 12], [12, 12], [20, 12]]
    module = build_fcos(small_cfg(), in_channels=64)
    # 100 x 150 pads to 128 x 160: 16x20 + 8x10 + 4x5 + 2x3 + 1x2 = 428 points, 3 classes each
    counts = module.count_samples([target_boxlist([], [], (150, 100))], [(100, 150)])
    assert counts.tolist() == [428 * NUM_CLASSES, 0]
    locations = locations_for_sizes([(16, 20), (8, 10)], (8, 16))
    assert [len(l) for l in locations] == [320, 80]
    assert locations[1][-1].tolist() == [9 * 16 + 8, 7 * 16 + 8]


BOXES = torch.tensor([[0, 0, 40, 40], [0, 0, 200, 200], [0, 0, 60, 60]], dtype=torch.float32)
BOX_LABELS = torch.tensor([1, 2, 3])
# (x, y, level) -> expected label without / with center sampling (radius 1.5)
HAND_POINTS = [
    (20, 20, 0, 1, 1),    # in boxes 0 (max side 20) and 2 (40): the smaller, box 0
    (20, 20, 2, 2, 0),    # on P5 only box 1 is in range (max side 180); outside its centre square
    (100, 100, 2, 0, 0),  # box 1 centre: max side 100 is below P5's range (128, 256]
    (10, 10, 0, 1, 1),    # box 0 (max side 30) beats box 2 (max side 50) by area
    (50, 50, 0, 3, 0),    # only box 2 (max side 50); outside its centre square [18, 42]
    (2, 2, 0, 1, 0),      # inside box 0, but outside its centre square [8, 32]
    (300, 300, 0, 0, 0),  # outside every box
]


@pytest.mark.parametrize("radius,column", [(0.0, 3), (1.5, 4)])
def test_assignment_on_hand_built_points(radius, column):
    points = torch.tensor([[p[0], p[1]] for p in HAND_POINTS], dtype=torch.float32)
    levels = [p[2] for p in HAND_POINTS]
    bounds = torch.tensor([[SIZE_BOUNDS[l], SIZE_BOUNDS[l + 1]] for l in levels])
    strides = torch.tensor([float(STRIDES[l]) for l in levels])
    labels, ltrb = assign_points_to_boxes(points, bounds, strides, BOXES, BOX_LABELS, radius)
    assert labels.tolist() == [p[column] for p in HAND_POINTS]
    if radius == 0:
        assert ltrb[0].tolist() == [20, 20, 20, 20]
        assert ltrb[3].tolist() == [10, 10, 30, 30]


def test_assignment_without_boxes():
    points = torch.tensor([[4.0, 4.0], [12.0, 4.0]])
    labels, ltrb = assign_points_to_boxes(points, torch.tensor([[0.0, 64.0]] * 2), torch.tensor([8.0, 8.0]),
                                          torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64), 0.0)
    assert labels.tolist() == [0, 0] and ltrb.abs().sum() == 0


def iou_loss(pred, target, kind):
    """FCOS's loss on (l, t, r, b) distances from one point: IoU smoothed as (I + 1) / (U + 1)."""
    return box_overlap_loss(boxes_around_origin(pred), boxes_around_origin(target), kind, smooth=1.0)


def boxes_around(point, ltrb):
    x, y = point
    return torch.stack((x - ltrb[:, 0], y - ltrb[:, 1], x + ltrb[:, 2], y + ltrb[:, 3]), dim=1)


def test_iou_losses_against_hand_values_and_torchvision():
    pred = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    tgt = torch.tensor([[2.0, 2.0, 2.0, 2.0]])
    # areas 24 and 16, intersection 3 x 4 = 12, union 28; smoothed as (I + 1) / (U + 1)
    assert iou_loss(pred, tgt, "iou").item() == pytest.approx(-math.log(13 / 29), rel=1e-6)
    # enclosing box 5 x 6 = 30
    assert iou_loss(pred, tgt, "giou").item() == pytest.approx(1 - (13 / 29 - 2 / 30), rel=1e-5)

    # With large boxes the smoothing vanishes: IoU and GIoU match torchvision's
    torch.manual_seed(0)
    pred = torch.rand(20, 4) * 1000 + 1000
    tgt = torch.rand(20, 4) * 1000 + 1000
    boxes_p, boxes_t = boxes_around((0.0, 0.0), pred), boxes_around((0.0, 0.0), tgt)
    ref_iou = box_iou(boxes_p, boxes_t).diagonal()
    ref_giou = generalized_box_iou(boxes_p, boxes_t).diagonal()
    assert torch.allclose(torch.exp(-iou_loss(pred, tgt, "iou")), ref_iou, rtol=1e-4)
    assert torch.allclose(1 - iou_loss(pred, tgt, "giou"), ref_giou, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="IOU_LOSS_TYPE"):
        build_fcos(small_cfg(IOU_LOSS_TYPE="l1"), in_channels=64)


def test_centerness_targets_hand_values():
    ltrb = torch.tensor([[10.0, 20.0, 30.0, 40.0], [5.0, 5.0, 5.0, 5.0]])
    assert centerness_targets(ltrb).tolist() == pytest.approx([math.sqrt(10 / 30 * 20 / 40), 1.0])


@pytest.mark.parametrize("cls_loss", ["focal", "ce"])
def test_losses_match_direct_formulas(cls_loss):
    torch.manual_seed(0)
    module = build_fcos(small_cfg(cls_loss=cls_loss), in_channels=64)
    cfg_divisibility = 32
    features = fpn_features(cfg_divisibility, cfg_divisibility, channels=64)
    locations = locations_for_sizes([tuple(f.shape[-2:]) for f in features], STRIDES)
    box_cls = [torch.randn(1, NUM_CLASSES, *f.shape[-2:]) for f in features]
    box_reg = [torch.rand(1, 4, *f.shape[-2:]) * 20 + 1 for f in features]
    centerness = [torch.randn(1, 1, *f.shape[-2:]) for f in features]
    boxes = [[2.0, 3.0, 20.0, 25.0]]
    loss_cls, loss_reg, loss_ctr = module.loss_evaluator(
        locations, box_cls, box_reg, centerness, [target_boxlist(boxes, [2], (32, 32))]
    )

    # The reference walks the points one by one: P3 points strictly inside the box are positives
    # (every side is below 64); no other level has a point in its size range.
    flat = lambda maps: torch.cat([m[0].reshape(m.shape[1], -1).t() for m in maps])  # noqa: E731
    logits, regs, ctrs = flat(box_cls), flat(box_reg), flat(centerness)[:, 0]
    points = torch.cat(locations)
    x1, y1, x2, y2 = boxes[0]
    positives, targets_ltrb = [], []
    for i, (x, y) in enumerate(points.tolist()):
        if i < 16 and x1 < x < x2 and y1 < y < y2:
            positives.append(i)
            targets_ltrb.append([x - x1, y - y1, x2 - x, y2 - y])
    # x in {4, 12} and y in {4, 12, 20} lie strictly inside [2, 20] x [3, 25]
    assert len(positives) == 6
    num_pos = len(positives)
    labels = torch.zeros(len(points), dtype=torch.int64)
    labels[positives] = 2
    one_hot = torch.stack([(labels == c + 1).float() for c in range(NUM_CLASSES)], dim=1)
    if cls_loss == "focal":
        expected_cls = sigmoid_focal_loss(logits, one_hot, alpha=0.25, gamma=2.0, reduction="sum")
    else:
        p = torch.sigmoid(logits.double())
        expected_cls = -(one_hot * torch.log(p) + (1 - one_hot) * torch.log(1 - p)).sum()
    assert loss_cls.item() == pytest.approx(expected_cls.item() / num_pos, rel=1e-5)

    expected_reg, expected_ctr, weight_sum = 0.0, 0.0, 0.0
    for i, (l, t, r, b) in zip(positives, targets_ltrb):
        weight = math.sqrt(min(l, r) / max(l, r) * min(t, b) / max(t, b))
        pl, pt, pr, pb = regs[i].tolist()
        inter = (min(pl, l) + min(pr, r)) * (min(pt, t) + min(pb, b))
        union = (pl + pr) * (pt + pb) + (l + r) * (t + b) - inter
        expected_reg += weight * -math.log((inter + 1) / (union + 1))
        weight_sum += weight
        q = 1 / (1 + math.exp(-ctrs[i].item()))
        expected_ctr += -(weight * math.log(q) + (1 - weight) * math.log(1 - q))
    assert loss_reg.item() == pytest.approx(expected_reg / weight_sum, rel=1e-5)
    assert loss_ctr.item() == pytest.approx(expected_ctr / num_pos, rel=1e-5)


def test_count_samples_and_optimal_bias_by_hand():
    cfg = small_cfg()
    cfg.DATALOADER.SIZE_DIVISIBILITY = 0
    module = build_fcos(cfg, in_channels=64)
    # 64 x 64: 8x8 + 4x4 + 2x2 + 1x1 + 1x1 = 86 points. The 32 x 32 box [8, 40]^2 holds the P3 points
    # 12, 20, 28, 36 in x and y (16 positives, largest side <= 32 < 64); its single P4 point (24, 24)
    # has largest side 16, outside P4's range (64, 128].
    counts = module.count_samples([target_boxlist([[8.0, 8.0, 40.0, 40.0]], [1], (64, 64))], [(64, 64)])
    assert counts.dtype == torch.float64
    assert counts.tolist() == [86 * NUM_CLASSES, 16]
    info = module.set_bias_from_counts(counts)
    expected_bias = -math.log(86 * NUM_CLASSES / 16 - 1)
    assert info["bias"] == pytest.approx(expected_bias)
    assert torch.allclose(module.head.cls_logits.bias, torch.full((NUM_CLASSES,), expected_bias), atol=1e-6)


@pytest.mark.parametrize("norm_reg_targets,centerness_on_reg", [(False, False), (True, True)])
def test_head_outputs(norm_reg_targets, centerness_on_reg):
    torch.manual_seed(0)
    cfg = small_cfg(NORM_REG_TARGETS=norm_reg_targets, CENTERNESS_ON_REG=centerness_on_reg)
    head = build_fcos(cfg, in_channels=64).head
    features = fpn_features(64, 96, channels=64)
    logits, regression, centerness = head(features)
    for f, c, r, ctr in zip(features, logits, regression, centerness):
        assert c.shape == (1, NUM_CLASSES) + f.shape[-2:]
        assert r.shape == (1, 4) + f.shape[-2:] and (r >= 0).all()
        assert ctr.shape == (1, 1) + f.shape[-2:]
    # the prior: every initial class probability is PRIOR_PROB
    assert torch.sigmoid(head.cls_logits.bias).tolist() == pytest.approx([0.01] * NUM_CLASSES)
    if norm_reg_targets:
        # relu(scale * x) * stride: scaling the level's Scale scales the distances
        with torch.no_grad():
            head.scales[1].scale.fill_(2.0)
        assert torch.allclose(head(features)[1][1], regression[1] * 2.0, atol=1e-5)
    with pytest.raises(ValueError, match="multiple of 32"):
        build_fcos(cfg, in_channels=24)


@pytest.mark.parametrize("sqrt_score", [False, True])
def test_postprocessor_decodes_points_and_scores(sqrt_score):
    # one level of 1 x 3 points at x = 4, 12, 20 (y = 4), two classes
    locations = [locations_for_level(1, 3, 8)]
    probs = torch.tensor([[0.9, 0.01], [0.5, 0.3], [0.02, 0.04]])  # [points, classes]
    box_cls = [torch.logit(probs).t().reshape(1, 2, 1, 3)]
    box_reg = [torch.tensor([[2.0, 3.0, 4.0, 5.0], [1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]]).t().reshape(1, 4, 1, 3)]
    ctr = torch.tensor([0.5, 0.8, 0.9])
    centerness = [torch.logit(ctr).reshape(1, 1, 1, 3)]
    post = fcos_postprocessor(sqrt_score, pre_nms_thresh=0.05, pre_nms_top_n=1000, nms_thresh=0.6,
                              fpn_post_nms_top_n=100, min_size=0, num_classes=NUM_CLASSES)
    result = post(locations, box_cls, box_reg, centerness, [(30, 40)])[0]
    order = result.get_field("scores").argsort(descending=True)
    expected = torch.tensor([0.9 * 0.5, 0.5 * 0.8, 0.3 * 0.8])
    expected = expected.sqrt() if sqrt_score else expected
    assert result.get_field("scores")[order].tolist() == pytest.approx(expected.tolist(), rel=1e-5)
    assert result.get_field("labels")[order].tolist() == [1, 1, 2]
    # point (4, 4) with distances (2, 3, 4, 5) -> box (2, 1, 8, 9); the image is 40 wide, 30 high
    assert result.bbox[order[0]].tolist() == pytest.approx([2.0, 1.0, 8.0, 9.0])
    assert result.size == (40, 30)
