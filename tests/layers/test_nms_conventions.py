"""NMS box conventions (default and maskrcnn-benchmark's legacy one) and the IoU of empty unions.

The keep-lists are worked out by hand from the boxes' areas; the random-box checks compare with
an independent float64 reference of the same greedy rule, written here in a few lines.
"""
import pytest
import torch
import torchvision

from maskrcnn_benchmark.layers import batched_nms, nms
from maskrcnn_benchmark.layers._ops import ops

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]

# Default widths x2 - x1 / legacy widths x2 - x1 + 1:
#   A area 100 / 121; B area 50 / 66; C area 100 / 121; D far away.
#   IoU(A, B) = 50/100 = 0.5 exactly        / 66/121  = 0.545
#   IoU(A, C) = 90/110 = 0.818              / 110/132 = 0.833
#   IoU(B, C) = 45/105 = 0.429              / 60/127  = 0.472
FOUR_BOXES = [[0, 0, 10, 10], [0, 0, 10, 5], [1, 0, 11, 10], [30, 30, 40, 40]]
FOUR_SCORES = [0.9, 0.8, 0.7, 0.6]

# Legacy areas 100 and 50, intersection 50: IoU exactly 0.5 (default: 36/81 = 0.444).
LEGACY_TIE = [[0, 0, 9, 9], [0, 0, 9, 4]]

# A row of three: A-B and B-C overlap by a third (legacy 66/176 = 0.375), A and C touch at
# x = 10 (default IoU 0; legacy: one shared pixel column, 11/231 = 0.048).
ROW = [[0, 0, 10, 10], [5, 0, 15, 10], [10, 0, 20, 10]]
ROW_SCORES = [0.9, 0.8, 0.7]


def run(boxes, scores, threshold, legacy, dtype=torch.float32):
    return nms(torch.tensor(boxes, dtype=dtype), torch.tensor(scores, dtype=dtype), threshold,
               legacy=legacy).tolist()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "boxes, scores, threshold, legacy, expected",
    [
        # IoU(A, B) = 0.5 exactly: kept by "> 0.5", dropped just below it.
        (FOUR_BOXES, FOUR_SCORES, 0.5, False, [0, 1, 3]),
        (FOUR_BOXES, FOUR_SCORES, 0.49, False, [0, 3]),
        # Legacy IoU(A, B) = 0.545 >= 0.5.
        (FOUR_BOXES, FOUR_SCORES, 0.5, True, [0, 3]),
        (FOUR_BOXES, FOUR_SCORES, 0.55, True, [0, 1, 3]),
        # IoU(A, C) is 0.818 under one convention and 0.833 under the other.
        (FOUR_BOXES, FOUR_SCORES, 0.82, False, [0, 1, 2, 3]),
        (FOUR_BOXES, FOUR_SCORES, 0.82, True, [0, 1, 3]),
        # Tie exactly at the threshold under the legacy convention: ">=" suppresses.
        (LEGACY_TIE, [0.9, 0.8], 0.5, True, [0]),
        (LEGACY_TIE, [0.9, 0.8], 0.5001, True, [0, 1]),
        (LEGACY_TIE, [0.9, 0.8], 0.5, False, [0, 1]),
        (LEGACY_TIE, [0.9, 0.8], 0.44, False, [0]),
        # B is dropped by A, so it cannot drop C; touching boxes overlap only under +1 widths.
        (ROW, ROW_SCORES, 0.3, False, [0, 2]),
        (ROW, ROW_SCORES, 0.3, True, [0, 2]),
        (ROW, ROW_SCORES, 0.04, True, [0]),
        (ROW, ROW_SCORES, 0.0, False, [0, 2]),
        # Threshold 0 with ">=": every box meets it, disjoint ones (IoU 0) included.
        (ROW, ROW_SCORES, 0.0, True, [0]),
    ],
)
def test_hand_computed_keep_lists(dtype, boxes, scores, threshold, legacy, expected):
    assert run(boxes, scores, threshold, legacy, dtype) == expected


def test_scores_order_the_output_not_the_input_order():
    # The same boxes as FOUR_BOXES, listed D, C, B, A with the scores following them.
    boxes = FOUR_BOXES[::-1]
    scores = FOUR_SCORES[::-1]
    assert run(boxes, scores, 0.5, False) == [3, 2, 0]
    assert run(boxes, scores, 0.5, True) == [3, 0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_union_has_iou_zero(dtype):
    # Three copies of one zero-area box, and a zero-area box beside a real one. Their union is
    # empty, IoU is defined as 0: "IoU > 0" keeps them all, while at a negative threshold they are
    # suppressed like any disjoint pair (a NaN IoU would compare false and keep them).
    point = [5, 5, 5, 5]
    boxes = [point, point, point, [0, 0, 4, 0], [20, 20, 30, 30]]
    scores = [0.9, 0.8, 0.7, 0.6, 0.5]
    assert run(boxes, scores, 0.0, False, dtype) == [0, 1, 2, 3, 4]
    assert run(boxes, scores, 0.5, False, dtype) == [0, 1, 2, 3, 4]
    assert run(boxes, scores, -0.5, False, dtype) == [0]
    # With +1 widths the point is a 1 x 1 box: its copies coincide (IoU 1) and are dropped;
    # [0, 0, 4, 0] is 5 x 1 and does not touch it.
    assert run(boxes, scores, 0.5, True, dtype) == [0, 3, 4]


def test_inverted_boxes_never_suppress():
    # x2 < x1: negative areas, union not positive, IoU 0.
    boxes = [[10, 10, 0, 0], [10, 10, 0, 0], [9, 9, 1, 1]]
    assert run(boxes, [0.9, 0.8, 0.7], 0.1, False) == [0, 1, 2]
    assert run(boxes, [0.9, 0.8, 0.7], 0.1, True) == [0, 1, 2]


def test_empty_boxes_agree_with_torchvision_at_usual_thresholds():
    g = torch.Generator().manual_seed(3)
    corners = (torch.rand(60, 2, generator=g) * 20).round()
    sizes = (torch.rand(60, 2, generator=g) * 6).round()  # many zero widths or heights
    boxes = torch.cat([corners, corners + sizes], dim=1).repeat(2, 1)  # and exact duplicates
    scores = torch.rand(120, generator=g)
    for threshold in (0.0, 0.3, 0.7):
        assert torch.equal(nms(boxes, scores, threshold), torchvision.ops.nms(boxes, scores, threshold))


def reference_nms(boxes, scores, threshold, legacy):
    """The greedy rule in float64, pair by pair: an independent statement of the convention."""
    boxes = boxes.double()
    offset = 1.0 if legacy else 0.0
    area = (boxes[:, 2] - boxes[:, 0] + offset) * (boxes[:, 3] - boxes[:, 1] + offset)
    kept = []
    for i in torch.sort(scores, descending=True, stable=True).indices.tolist():
        suppressed = False
        for k in kept:
            w = (torch.minimum(boxes[i, 2], boxes[k, 2]) - torch.maximum(boxes[i, 0], boxes[k, 0]) + offset).clamp(min=0)
            h = (torch.minimum(boxes[i, 3], boxes[k, 3]) - torch.maximum(boxes[i, 1], boxes[k, 1]) + offset).clamp(min=0)
            union = area[i] + area[k] - w * h
            iou = float(w * h / union) if union > 0 else 0.0
            if (iou >= threshold) if legacy else (iou > threshold):
                suppressed = True
                break
        if not suppressed:
            kept.append(i)
    return kept


@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_random_boxes_match_the_reference(legacy, threshold):
    g = torch.Generator().manual_seed(int(threshold * 10) + legacy)
    corners = torch.rand(150, 2, generator=g, dtype=torch.float64) * 60
    boxes = torch.cat([corners, corners + torch.rand(150, 2, generator=g, dtype=torch.float64) * 20], dim=1)
    scores = torch.rand(150, generator=g, dtype=torch.float64)
    assert nms(boxes, scores, threshold, legacy=legacy).tolist() == reference_nms(boxes, scores, threshold, legacy)


def test_legacy_false_is_the_default_and_matches_torchvision():
    g = torch.Generator().manual_seed(0)
    corners = torch.rand(300, 2, generator=g) * 100
    boxes = torch.cat([corners, corners + torch.rand(300, 2, generator=g) * 30], dim=1)
    scores = torch.rand(300, generator=g)
    expected = torchvision.ops.nms(boxes, scores, 0.5)
    assert torch.equal(nms(boxes, scores, 0.5), expected)
    assert torch.equal(ops.nms(boxes, scores, 0.5), expected)  # the schema's default
    assert torch.equal(nms(boxes, scores, 0.5, legacy=False), expected)
    assert not torch.equal(nms(boxes, scores, 0.5, legacy=True), expected)


@pytest.mark.parametrize("legacy", [False, True])
def test_batched_nms_equals_one_pass_per_category(legacy):
    g = torch.Generator().manual_seed(5)
    corners = torch.rand(400, 2, generator=g) * 50 - 20
    boxes = torch.cat([corners, corners + torch.rand(400, 2, generator=g) * 25], dim=1).round()
    scores = torch.rand(400, generator=g)
    idxs = torch.randint(0, 4, (400,), generator=g)
    for threshold in (0.0, 0.5):
        expected = []
        for category in range(4):
            members = torch.nonzero(idxs == category).flatten()
            expected += members[nms(boxes[members], scores[members], threshold, legacy)].tolist()
        expected.sort(key=lambda i: (-scores[i].item(), i))
        assert batched_nms(boxes, scores, idxs, threshold, legacy=legacy).tolist() == expected


def test_batched_legacy_threshold_zero_keeps_other_categories():
    # Under ">= 0" disjoint boxes suppress each other within a category, never across categories
    # (the coordinate-offset trick alone would let them).
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [50.0, 50.0, 60.0, 60.0], [80.0, 0.0, 90.0, 10.0]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert batched_nms(boxes, scores, torch.tensor([0, 1, 1]), 0.0, legacy=True).tolist() == [0, 1]
    assert batched_nms(boxes, scores, torch.tensor([0, 0, 0]), 0.0, legacy=True).tolist() == [0]
    assert batched_nms(boxes, scores, torch.tensor([2, 1, 0]), -0.1).tolist() == [0, 1, 2]


def test_nan_threshold_is_refused():
    with pytest.raises(ValueError, match="iou_threshold is NaN"):
        nms(torch.zeros(2, 4), torch.zeros(2), float("nan"))


@pytest.mark.parametrize("legacy", [False, True])
def test_fake_kernel_and_schema_take_the_convention(legacy):
    boxes = torch.tensor(FOUR_BOXES, dtype=torch.float32)
    scores = torch.tensor(FOUR_SCORES)
    result = torch.library.opcheck(ops.nms.default, (boxes, scores, 0.5), {"legacy": legacy})
    assert set(result.values()) == {"SUCCESS"}, result
