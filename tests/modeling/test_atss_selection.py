"""ATSS adaptive training sample selection and its centre-ness targets, on hand-built anchors."""
import pytest
import torch
from torchvision.ops import box_iou

from maskrcnn_benchmark.modeling.rpn.atss.selection import anchor_centerness, select_atss_positives
from maskrcnn_benchmark.structures.box_convention import CONTINUOUS, MASKRCNN_BENCHMARK

from helpers import square_grid


def grid_index(row, col, num_cells=5):
    return row * num_cells + col


# 5x5 anchors of size 20, centres 5..45 (square_grid(5, 10, 20)).
SINGLE_POSITIVE_CASES = [
    # Box centre (25, 25): the 9 nearest anchors are the centre (IoU 400/676 = 0.592), 4 edge
    # neighbours (260/816 = 0.319) and 4 corners (169/907 = 0.186); mean 0.290 + std 0.131 = 0.421,
    # so only the centre anchor passes.
    ([[12.0, 12.0, 38.0, 38.0]], 0),
    # Both boxes select the centre anchor; its IoU is 0.592 with box 0 and 400/484 = 0.826 with
    # box 1 (box 1's threshold is 0.310 + 0.212 = 0.521, so its edge anchors at 0.331 fail).
    ([[12.0, 12.0, 38.0, 38.0], [14.0, 14.0, 36.0, 36.0]], 1),
]


@pytest.mark.parametrize("boxes,owner", SINGLE_POSITIVE_CASES)
def test_only_the_central_anchor_passes_mean_plus_std(boxes, owner):
    matched = select_atss_positives([square_grid(5, 10, 20)], torch.tensor(boxes), topk=9)
    expected = torch.full((25,), -1)
    expected[grid_index(2, 2)] = owner
    assert torch.equal(matched, expected)


def test_box_larger_than_anchors_takes_all_nine_candidates():
    # Every candidate lies inside the 40x40 box: all IoUs are 0.25, std 0, threshold 0.25.
    anchors = square_grid(5, 10, 20)
    gt = torch.tensor([[5.0, 5.0, 45.0, 45.0]])
    matched = select_atss_positives([anchors], gt, topk=9)
    positives = set((matched == 0).nonzero().flatten().tolist())
    assert positives == {grid_index(r, c) for r in (1, 2, 3) for c in (1, 2, 3)}


def test_candidates_whose_centre_is_outside_the_box_are_rejected():
    # An 8x8 box between four anchor centres: all four nearest anchors overlap it (IoU 0.16, above
    # the threshold) but none has its centre inside, so the box gets no positive.
    anchors = square_grid(5, 10, 20)
    gt = torch.tensor([[26.0, 26.0, 34.0, 34.0]])
    matched = select_atss_positives([anchors], gt, topk=4)
    assert (matched == -1).all()


def test_topk_is_taken_per_level_and_indices_cross_levels():
    # Level 0: 5x5 anchors of 20 (stride 10); level 1: 3x3 anchors of 40 (stride 20). Box
    # [12, 7, 52, 47], centre (32, 27), topk 2. Candidates: level 0 (35,25), (25,25) with IoU 0.25
    # each; level 1 (30,30) with 1406/1794 = 0.784 and (30,10) with 874/2326 = 0.376.
    # Threshold 0.415 + 0.253 = 0.668: only the level-1 centre anchor, index 25 + 1*3 + 1 = 29.
    levels = [square_grid(5, 10, 20), square_grid(3, 20, 40)]
    gt = torch.tensor([[12.0, 7.0, 52.0, 47.0]])
    matched = select_atss_positives(levels, gt, topk=2)
    assert (matched >= 0).nonzero().flatten().tolist() == [29]


def test_no_boxes_gives_all_background():
    matched = select_atss_positives([square_grid(3, 10, 20)], torch.zeros(0, 4), topk=9)
    assert matched.shape == (9,) and (matched == -1).all()


def naive_atss(levels, gt_boxes, topk, convention):
    """Straightforward per-box loops, as written in the ATSS paper's Algorithm 1 (torchvision's IoU
    of the boxes as continuous ones)."""
    anchors = torch.cat(levels)
    centers = (anchors[:, :2] + anchors[:, 2:]) / 2
    ious = box_iou(convention.to_continuous(anchors), convention.to_continuous(gt_boxes))
    best = {}
    for g, box in enumerate(gt_boxes):
        gt_center = (box[:2] + box[2:]) / 2
        candidates, start = [], 0
        for level in levels:
            dist = ((centers[start:start + len(level)] - gt_center) ** 2).sum(1).sqrt()
            order = sorted(range(len(level)), key=lambda i: float(dist[i]))[:topk]
            candidates += [start + i for i in order]
            start += len(level)
        values = ious[candidates, g]
        threshold = values.mean() + values.std()
        for a in candidates:
            cx, cy = centers[a]
            inside = box[0] < cx < box[2] and box[1] < cy < box[3]
            if ious[a, g] >= threshold and inside and (a not in best or ious[a, g] > ious[a, best[a]]):
                best[a] = g
    matched = torch.full((len(anchors),), -1)
    for a, g in best.items():
        matched[a] = g
    return matched


@pytest.mark.parametrize("convention", [CONTINUOUS, MASKRCNN_BENCHMARK])
@pytest.mark.parametrize("seed", range(5))
def test_matches_a_naive_reference_on_random_boxes(seed, convention):
    generator = torch.Generator().manual_seed(seed)
    # Irrational-ish offsets make distance ties (which either implementation may break) unlikely.
    levels = [square_grid(8, 8, 32) + 0.013, square_grid(4, 16, 64) + 0.029, square_grid(2, 32, 128) + 0.041]
    top_left = torch.rand(4, 2, generator=generator) * 40
    sizes = torch.rand(4, 2, generator=generator) * 30 + 8
    gt = torch.cat([top_left, top_left + sizes], dim=1)
    assert torch.equal(select_atss_positives(levels, gt, topk=5, convention=convention),
                       naive_atss(levels, gt, topk=5, convention=convention))


def test_centerness_targets_by_hand():
    anchors = torch.tensor([[0.0, 0.0, 20.0, 20.0], [10.0, 0.0, 30.0, 20.0]])  # centres (10,10), (20,10)
    gt = torch.tensor([[0.0, 0.0, 40.0, 20.0], [0.0, 0.0, 40.0, 20.0]])
    # (10,10): l=10 r=30 t=10 b=10 -> sqrt(1/3); (20,10): l=r, t=b -> 1.
    expected = torch.tensor([(1 / 3) ** 0.5, 1.0])
    assert torch.allclose(anchor_centerness(anchors, gt), expected)
