"""The dense-head kit (modeling/dense_heads) against independent references: torchvision's box
ops, hand-built grids and hand-computed values (the normaliser across processes: test_dense_normalizer_gloo)."""
import math

import pytest
import torch
from torch import nn
from torchvision.ops import box_iou, generalized_box_iou_loss

from maskrcnn_benchmark.modeling.backbone.deform_conv import DFConv2d
from maskrcnn_benchmark.modeling.dense_heads.box_losses import (
    aligned_iou_and_giou,
    box_overlap_loss,
    boxes_around_origin,
)
from maskrcnn_benchmark.modeling.dense_heads.centerness import centerness_targets, distances_to_box_sides
from maskrcnn_benchmark.modeling.dense_heads.layout import flatten_level, flatten_levels
from maskrcnn_benchmark.modeling.dense_heads.normalizer import cross_process_normalizer
from maskrcnn_benchmark.modeling.dense_heads.points import PointGenerator
from maskrcnn_benchmark.modeling.dense_heads.tower import Scale, init_dense_head_, make_tower
from maskrcnn_benchmark.modeling.rpn.anchor_generator import octave_anchor_generator, positions_for_image_size
from maskrcnn_benchmark.structures.box_convention import CONTINUOUS


def random_boxes(n, generator, low=0.0, span=100.0):
    corners = torch.rand(n, 2, generator=generator) * span + low
    return torch.cat([corners, corners + 1 + torch.rand(n, 2, generator=generator) * span], dim=1)


# ---------------------------------------------------------------- tower, scale, init

@pytest.mark.parametrize("use_gn,use_dcn_last", [(False, False), (True, False), (True, True)])
def test_tower_layout_and_keys(use_gn, use_dcn_last):
    tower = make_tower(32, 3, use_gn=use_gn, use_dcn_last=use_dcn_last)
    per_conv = [nn.Conv2d, nn.GroupNorm, nn.ReLU] if use_gn else [nn.Conv2d, nn.ReLU]
    expected = per_conv * 3
    if use_dcn_last:
        expected[-len(per_conv)] = DFConv2d
    assert [type(m) for m in tower] == expected
    x = torch.randn(2, 32, 5, 7)
    assert tower(x).shape == x.shape and (tower(x) >= 0).all()
    # maskrcnn-benchmark's RetinaNet tower: conv weights at 0, 2, 4 (checkpoint keys)
    if not use_gn:
        assert [k for k in tower.state_dict() if k.endswith("weight")] == ["0.weight", "2.weight", "4.weight"]


def test_tower_group_norm_width_is_checked_and_named():
    with pytest.raises(ValueError, match="MODEL.FCOS.*multiple of 32, got 24"):
        make_tower(24, 1, use_gn=True, owner="MODEL.FCOS")


def test_scale_multiplies_and_learns():
    scale = Scale(2.0)
    x = torch.randn(3, 4)
    assert torch.equal(scale(x), x * 2.0)
    scale(x).sum().backward()
    assert scale.scale.grad.item() == pytest.approx(x.sum().item(), rel=1e-6)


def test_init_sets_normal_weights_zero_bias_prior_and_keeps_dcn_offsets_at_zero():
    torch.manual_seed(0)
    head = nn.Module()
    head.tower = make_tower(32, 2, use_gn=True, use_dcn_last=True)
    head.cls_logits = nn.Conv2d(32, 80, 3, padding=1)
    init_dense_head_(head, head.cls_logits, prior_prob=0.01, std=0.01)
    convs = (head.tower[0], head.tower[3].conv, head.cls_logits)
    weights = torch.cat([conv.weight.flatten() for conv in convs])
    assert weights.std().item() == pytest.approx(0.01, rel=0.05)
    assert head.tower[0].bias.abs().max() == 0 and head.tower[3].conv.bias.abs().max() == 0
    assert head.tower[3].offset.weight.abs().max() == 0  # the regular grid
    assert torch.sigmoid(head.cls_logits.bias).tolist() == pytest.approx([0.01] * 80)


# ---------------------------------------------------------------- layout

def test_flatten_is_location_major_then_anchor():
    # 2 images, A = 3 anchors, C = 2 values, 2 x 4 map: element (n, a*C + c, h, w) = unique id
    n, a, c, h, w = 2, 3, 2, 2, 4
    level = torch.arange(n * a * c * h * w, dtype=torch.float32).reshape(n, a * c, h, w)
    flat = flatten_level(level, c)
    assert flat.shape == (n, h * w * a, c)
    for image in range(n):
        for row in range(h):
            for col in range(w):
                for anchor in range(a):
                    position = (row * w + col) * a + anchor
                    for k in range(c):
                        assert flat[image, position, k] == level[image, anchor * c + k, row, col]
    both = flatten_levels([level, level[:, :, :1, :2]], c)
    assert torch.equal(both, torch.cat([flat, flatten_level(level[:, :, :1, :2], c)], dim=1))


# ---------------------------------------------------------------- positions for an image size

def test_points_for_an_image_size_are_the_cell_centres_of_the_padded_grid():
    generator = PointGenerator((8, 16))
    # 20 x 30 pads to 32 x 32 (SIZE_DIVISIBILITY 32): 4 x 4 cells at stride 8, 2 x 2 at stride 16
    points = positions_for_image_size(generator, (20, 30), 32)
    expected_p3 = [[4 + 8 * col, 4 + 8 * row] for row in range(4) for col in range(4)]
    expected_p4 = [[8 + 16 * col, 8 + 16 * row] for row in range(2) for col in range(2)]
    assert points[0].tolist() == expected_p3 and points[1].tolist() == expected_p4
    # no padding: ceil(20 / 8) x ceil(30 / 8) = 3 x 4
    assert positions_for_image_size(generator, (20, 30), 0)[0].shape == (12, 2)


def test_anchors_for_an_image_size_tile_the_cell_anchors_over_the_padded_grid():
    generator = octave_anchor_generator((16, 32), (0.5, 1.0), (8, 16), octave=2.0, scales_per_octave=2,
                                        convention=CONTINUOUS)  # exact shapes
    anchors = positions_for_image_size(generator, (20, 30), 16)  # pads to 32 x 32
    assert [a.shape for a in anchors] == [(4 * 4 * 4, 4), (2 * 2 * 4, 4)]
    # location (row 1, col 2) of P3, its 4 anchors: ratio-major, sizes 16 and 16 * sqrt(2)
    cx, cy = 8 * 2 + 4, 8 * 1 + 4
    expected = []
    for ratio in (0.5, 1.0):
        for size in (16.0, 16.0 * math.sqrt(2.0)):
            half_w, half_h = size / math.sqrt(ratio) / 2, size * math.sqrt(ratio) / 2
            expected.append([cx - half_w, cy - half_h, cx + half_w, cy + half_h])
    location = 1 * 4 + 2
    assert torch.allclose(anchors[0][location * 4:(location + 1) * 4], torch.tensor(expected), atol=1e-4)


# ---------------------------------------------------------------- IoU / GIoU losses

def test_giou_loss_matches_torchvision():
    generator = torch.Generator().manual_seed(0)
    pred, target = random_boxes(50, generator), random_boxes(50, generator)
    ours = box_overlap_loss(pred, target, "giou")
    torch.testing.assert_close(ours, generalized_box_iou_loss(pred, target, reduction="none"), rtol=1e-5, atol=1e-6)
    reference_iou = box_iou(pred, target).diagonal()
    torch.testing.assert_close(box_overlap_loss(pred, target, "iou"), -torch.log(reference_iou.clamp(min=1e-6)))


def test_smoothed_iou_of_distances_by_hand():
    # distances (1, 2, 3, 4) and (2, 2, 2, 2) from one point: areas 24 and 16, intersection
    # (1 + 2) x (2 + 2) = 12, union 28, hull (2 + 3) x (2 + 4) = 30; FCOS smooths (I + 1) / (U + 1)
    pred = boxes_around_origin(torch.tensor([[1.0, 2.0, 3.0, 4.0]]))
    target = boxes_around_origin(torch.tensor([[2.0, 2.0, 2.0, 2.0]]))
    iou, giou = aligned_iou_and_giou(pred, target, smooth=1.0)
    assert iou.item() == pytest.approx(13 / 29) and giou.item() == pytest.approx(13 / 29 - 2 / 30)
    assert box_overlap_loss(pred, target, "iou", smooth=1.0).item() == pytest.approx(-math.log(13 / 29))
    with pytest.raises(ValueError, match="'l1'"):
        box_overlap_loss(pred, target, "l1")


# ---------------------------------------------------------------- centre-ness

def test_centerness_targets_by_hand():
    points = torch.tensor([[20.0, 30.0], [5.0, 5.0], [50.0, 5.0]])
    boxes = torch.tensor([[10.0, 10.0, 50.0, 70.0], [0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0]])
    ltrb = distances_to_box_sides(points, boxes)
    assert ltrb.tolist() == [[10, 20, 30, 40], [5, 5, 5, 5], [50, 5, -40, 5]]
    # min/max per axis: 10/30 and 20/40; a centred point 1; a point outside its box 0
    assert centerness_targets(ltrb).tolist() == pytest.approx([math.sqrt(10 / 30 * 20 / 40), 1.0, 0.0])


# ---------------------------------------------------------------- the cross-process normaliser

def test_normaliser_alone_is_the_count_at_least_one():
    assert cross_process_normalizer(torch.tensor(7)).item() == 7.0
    assert cross_process_normalizer(0).item() == 1.0
    assert cross_process_normalizer(torch.tensor(0.25), minimum=1e-6).item() == 0.25
