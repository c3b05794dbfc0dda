import pytest
import torch
import torchvision

from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.box_convention import CONTINUOUS, MASKRCNN_BENCHMARK
from maskrcnn_benchmark.structures.boxlist_ops import (
    boxlist_iou,
    boxlist_ml_nms,
    boxlist_nms,
    cat_boxlist,
    remove_small_boxes,
)
from maskrcnn_benchmark.structures.segmentation_mask import SegmentationMask

IMAGE_SIZE = (100, 80)


def random_boxes(count, seed):
    generator = torch.Generator().manual_seed(seed)
    top_left = torch.rand(count, 2, generator=generator) * 60
    extent = torch.rand(count, 2, generator=generator) * 30 + 0.5
    return torch.cat([top_left, top_left + extent], dim=1)


@pytest.mark.parametrize("convention", [CONTINUOUS, MASKRCNN_BENCHMARK])
def test_boxlist_iou_matches_torchvision_in_both_modes(convention):
    # torchvision's boxes are continuous: inclusive corners are the continuous box one pixel wider
    first = BoxList(random_boxes(30, seed=1), IMAGE_SIZE)
    second = BoxList(random_boxes(20, seed=2), IMAGE_SIZE)
    expected = torchvision.ops.box_iou(convention.to_continuous(first.bbox), convention.to_continuous(second.bbox))
    torch.testing.assert_close(boxlist_iou(first, second, convention), expected)
    torch.testing.assert_close(
        boxlist_iou(first.convert("xywh", convention), second.convert("xywh", convention), convention), expected)


def test_boxlist_iou_hand_computed_and_degenerate_boxes():
    first = BoxList(torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 5.0, 5.0]]), IMAGE_SIZE)
    second = BoxList(torch.tensor([[5.0, 0.0, 15.0, 10.0], [5.0, 5.0, 5.0, 5.0]]), IMAGE_SIZE)
    iou = boxlist_iou(first, second, CONTINUOUS)
    assert iou[0, 0].item() == pytest.approx(50.0 / 150.0)  # no +1: widths are x2 - x1
    assert iou[1, 1].item() == 0.0  # empty union gives 0, not NaN
    assert not torch.isnan(iou).any()
    # maskrcnn-benchmark's (the default): 11 x 11 boxes overlapping on 6 x 11, a point is one pixel
    iou = boxlist_iou(first, second)
    assert iou[0, 0].item() == pytest.approx(66.0 / (121.0 + 121.0 - 66.0))
    assert iou[1, 1].item() == 1.0
    with pytest.raises(ValueError, match="same image"):
        boxlist_iou(first, BoxList(second.bbox, (50, 50)))


@pytest.mark.parametrize("convention", [CONTINUOUS, MASKRCNN_BENCHMARK])
def test_boxlist_nms_matches_torchvision(convention):
    # boxlist_nms runs maskrcnn_benchmark.layers.nms (the compiled op); torchvision is the reference
    # (on the continuous boxes; random IoUs never equal the threshold, so the tie rule plays no part).
    boxes = BoxList(random_boxes(200, seed=3), IMAGE_SIZE)
    scores = torch.rand(200, generator=torch.Generator().manual_seed(4))
    boxes.add_field("scores", scores)
    boxes.add_field("labels", torch.arange(200))
    expected = torchvision.ops.nms(convention.to_continuous(boxes.bbox), scores, 0.5)
    kept = boxlist_nms(boxes, 0.5, convention=convention)
    assert torch.equal(kept.get_field("labels"), expected)
    assert (kept.get_field("scores")[:-1] >= kept.get_field("scores")[1:]).all()
    limited = boxlist_nms(boxes.convert("xywh", convention), 0.5, max_proposals=10, convention=convention)
    assert limited.mode == "xywh"
    assert torch.equal(limited.get_field("labels"), expected[:10])
    assert boxlist_nms(boxes, 0.0) is boxes


def test_boxlist_nms_uses_the_named_score_field():
    boxes = BoxList(torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 0.0, 11.0, 10.0]]), IMAGE_SIZE)
    boxes.add_field("objectness", torch.tensor([0.2, 0.9]))
    kept = boxlist_nms(boxes, 0.5, score_field="objectness")
    assert kept.bbox.tolist() == [[1.0, 0.0, 11.0, 10.0]]


@pytest.mark.parametrize("convention", [CONTINUOUS, MASKRCNN_BENCHMARK])
def test_boxlist_ml_nms_matches_torchvision_batched_nms(convention):
    boxes = BoxList(random_boxes(150, seed=5), IMAGE_SIZE)
    generator = torch.Generator().manual_seed(6)
    scores = torch.rand(150, generator=generator)
    labels = torch.randint(1, 4, (150,), generator=generator)
    boxes.add_field("scores", scores)
    boxes.add_field("labels", labels)
    boxes.add_field("ids", torch.arange(150))
    expected = torchvision.ops.batched_nms(convention.to_continuous(boxes.bbox), scores, labels, 0.4)
    kept = boxlist_ml_nms(boxes, 0.4, convention=convention)
    assert torch.equal(kept.get_field("ids"), expected)
    # boxes of different classes do not suppress each other
    twins = BoxList(torch.tensor([[0.0, 0.0, 10.0, 10.0]] * 2), IMAGE_SIZE)
    twins.add_field("scores", torch.tensor([0.9, 0.8]))
    twins.add_field("labels", torch.tensor([1, 2]))
    assert len(boxlist_ml_nms(twins, 0.5)) == 2
    twins.add_field("labels", torch.tensor([1, 1]))
    assert len(boxlist_ml_nms(twins, 0.5)) == 1


def test_nms_of_an_empty_boxlist_is_empty():
    empty = BoxList(torch.zeros(0, 4), IMAGE_SIZE)
    empty.add_field("scores", torch.zeros(0))
    empty.add_field("labels", torch.zeros(0, dtype=torch.int64))
    assert len(boxlist_nms(empty, 0.5)) == 0
    assert len(boxlist_ml_nms(empty, 0.5)) == 0


def test_remove_small_boxes():
    boxes = BoxList(torch.tensor([[0.0, 0.0, 4.0, 10.0], [0.0, 0.0, 5.0, 5.0], [0.0, 0.0, 10.0, 4.9]]), IMAGE_SIZE)
    boxes.add_field("labels", torch.tensor([1, 2, 3]))
    assert remove_small_boxes(boxes, 5, CONTINUOUS).get_field("labels").tolist() == [2]
    assert len(remove_small_boxes(boxes, 0, CONTINUOUS)) == 3
    # maskrcnn-benchmark's widths are x2 - x1 + 1: 5 x 11, 6 x 6 and 11 x 5.9
    assert remove_small_boxes(boxes, 5).get_field("labels").tolist() == [1, 2, 3]
    assert remove_small_boxes(boxes, 6).get_field("labels").tolist() == [2]


def test_cat_boxlist_concatenates_boxes_and_fields_and_checks_compatibility():
    first = BoxList(random_boxes(3, seed=7), IMAGE_SIZE)
    second = BoxList(random_boxes(2, seed=8), IMAGE_SIZE)
    for index, boxlist in enumerate((first, second)):
        boxlist.add_field("labels", torch.full((len(boxlist),), index))
        polygons = [[[0, 0, 10, 0, 10, 10 + i]] for i in range(len(boxlist))]
        boxlist.add_field("masks", SegmentationMask(polygons, IMAGE_SIZE))
    combined = cat_boxlist([first, second])
    assert len(combined) == 5
    torch.testing.assert_close(combined.bbox, torch.cat([first.bbox, second.bbox]))
    assert combined.get_field("labels").tolist() == [0, 0, 0, 1, 1]
    assert len(combined.get_field("masks")) == 5

    with pytest.raises(ValueError, match="image size"):
        cat_boxlist([first, BoxList(second.bbox, (50, 50))])
    with pytest.raises(ValueError, match="mode"):
        cat_boxlist([first, second.convert("xywh")])
    with pytest.raises(ValueError, match="fields"):
        cat_boxlist([first, second.copy_with_fields("labels")])
    with pytest.raises(TypeError, match="item 1"):
        cat_boxlist([first, second.bbox])
    with pytest.raises(ValueError, match="non-empty"):
        cat_boxlist([])
