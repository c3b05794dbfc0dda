import pytest
import torch

from maskrcnn_benchmark.structures.bounding_box import FLIP_LEFT_RIGHT, FLIP_TOP_BOTTOM, BoxList
from maskrcnn_benchmark.structures.box_convention import CONTINUOUS
from maskrcnn_benchmark.structures.segmentation_mask import SegmentationMask

IMAGE_SIZE = (60, 40)  # width, height


def random_boxes(count, seed=0, size=IMAGE_SIZE):
    generator = torch.Generator().manual_seed(seed)
    top_left = torch.rand(count, 2, generator=generator) * torch.tensor(size) * 0.6
    extent = torch.rand(count, 2, generator=generator) * torch.tensor(size) * 0.4 + 1
    return torch.cat([top_left, top_left + extent], dim=1)


def boxlist_with_fields(count=5, seed=0):
    boxes = BoxList(random_boxes(count, seed), IMAGE_SIZE)
    boxes.add_field("labels", torch.arange(count))
    boxes.add_field("scores", torch.linspace(0.1, 0.9, count))
    return boxes


def test_xywh_conversion_has_no_plus_one_and_round_trips():
    boxes = BoxList(torch.tensor([[2.0, 3.0, 10.0, 7.0]]), IMAGE_SIZE)
    xywh = boxes.convert("xywh", CONTINUOUS)
    assert xywh.bbox.tolist() == [[2.0, 3.0, 8.0, 4.0]]
    assert xywh.area(CONTINUOUS).item() == 32.0 == boxes.area(CONTINUOUS).item()
    assert torch.equal(xywh.convert("xyxy", CONTINUOUS).bbox, boxes.bbox)
    # maskrcnn-benchmark's convention (the default) counts both corner pixels
    xywh = boxes.convert("xywh")
    assert xywh.bbox.tolist() == [[2.0, 3.0, 9.0, 5.0]]
    assert xywh.area().item() == 45.0 == boxes.area().item()
    assert torch.equal(xywh.convert("xyxy").bbox, boxes.bbox)


def test_convert_round_trip_keeps_fields():
    boxes = boxlist_with_fields()
    back = boxes.convert("xywh").convert("xyxy")
    torch.testing.assert_close(back.bbox, boxes.bbox)
    assert back.fields() == ["labels", "scores"]
    assert torch.equal(back.get_field("labels"), boxes.get_field("labels"))


def test_flip_matches_hand_computed_values_and_twice_is_identity():
    boxes = BoxList(torch.tensor([[2.0, 3.0, 10.0, 7.0]]), IMAGE_SIZE)
    assert boxes.transpose(FLIP_LEFT_RIGHT, CONTINUOUS).bbox.tolist() == [[50.0, 3.0, 58.0, 7.0]]
    assert boxes.transpose(FLIP_TOP_BOTTOM, CONTINUOUS).bbox.tolist() == [[2.0, 33.0, 10.0, 37.0]]
    # inclusive corners: pixel 2 of 60 mirrors to pixel 57
    assert boxes.transpose(FLIP_LEFT_RIGHT).bbox.tolist() == [[49.0, 3.0, 57.0, 7.0]]
    assert boxes.transpose(FLIP_TOP_BOTTOM).bbox.tolist() == [[2.0, 32.0, 10.0, 36.0]]
    many = boxlist_with_fields().convert("xywh")
    for method in (FLIP_LEFT_RIGHT, FLIP_TOP_BOTTOM):
        twice = many.transpose(method).transpose(method)
        assert twice.mode == "xywh"
        torch.testing.assert_close(twice.bbox, many.bbox)
    with pytest.raises(ValueError, match="transpose method"):
        many.transpose(7)


def test_resize_uniform_and_non_uniform_round_trip():
    boxes = boxlist_with_fields()
    doubled = boxes.resize((120, 80))
    torch.testing.assert_close(doubled.bbox, boxes.bbox * 2)
    stretched = boxes.resize((120, 20))
    torch.testing.assert_close(stretched.bbox[:, 0::2], boxes.bbox[:, 0::2] * 2)
    torch.testing.assert_close(stretched.bbox[:, 1::2], boxes.bbox[:, 1::2] * 0.5)
    assert stretched.size == (120, 20)
    torch.testing.assert_close(stretched.resize(IMAGE_SIZE).bbox, boxes.bbox)
    assert torch.equal(stretched.get_field("scores"), boxes.get_field("scores"))


def test_resize_and_flip_move_mask_fields():
    boxes = BoxList(torch.tensor([[4.0, 4.0, 14.0, 12.0]]), IMAGE_SIZE)
    boxes.add_field("masks", SegmentationMask([[[4, 4, 14, 4, 14, 12, 4, 12]]], IMAGE_SIZE))
    resized = boxes.resize((120, 80))
    assert resized.get_field("masks").size == (120, 80)
    assert resized.get_field("masks").get_mask_tensor().sum().item() == 4 * 80
    flipped = boxes.transpose(FLIP_LEFT_RIGHT, CONTINUOUS)  # polygons are continuous
    mask = flipped.get_field("masks").get_mask_tensor()
    columns = mask.any(dim=0).nonzero().flatten()
    x1, _, x2, _ = flipped.bbox[0].tolist()
    assert (columns.min().item(), columns.max().item() + 1) == (x1, x2)


def test_crop_moves_boxes_into_the_crop_frame_and_clamps():
    boxes = BoxList(torch.tensor([[5.0, 5.0, 20.0, 15.0], [40.0, 30.0, 55.0, 38.0]]), IMAGE_SIZE)
    cropped = boxes.crop((10, 8, 45, 35))
    assert cropped.size == (35, 27)
    assert cropped.bbox.tolist() == [[0.0, 0.0, 10.0, 7.0], [30.0, 22.0, 35.0, 27.0]]
    inside = (cropped.bbox[:, 0::2] >= 0) & (cropped.bbox[:, 0::2] <= 35)
    assert inside.all()


def test_clip_to_image_invariants_and_remove_empty():
    boxes = BoxList(torch.tensor([[-5.0, -3.0, 20.0, 50.0], [70.0, 10.0, 80.0, 20.0], [1.0, 2.0, 3.0, 4.0]]), IMAGE_SIZE)
    boxes.add_field("labels", torch.tensor([1, 2, 3]))
    kept = boxes.clip_to_image(remove_empty=True, convention=CONTINUOUS)
    assert kept.bbox.tolist() == [[0.0, 0.0, 20.0, 40.0], [1.0, 2.0, 3.0, 4.0]]
    assert kept.get_field("labels").tolist() == [1, 3]
    # inclusive corners stop at the last pixel, W - 1 and H - 1
    kept = boxes.clip_to_image(remove_empty=True)
    assert kept.bbox.tolist() == [[0.0, 0.0, 20.0, 39.0], [1.0, 2.0, 3.0, 4.0]]
    for convention, offset in ((CONTINUOUS, 0), (None, 1)):
        clipped = BoxList(random_boxes(20, seed=3) * 2 - 20, IMAGE_SIZE).clip_to_image(
            remove_empty=False, **({} if convention is None else {"convention": convention}))
        assert len(clipped) == 20
        assert (clipped.bbox >= 0).all()
        assert (clipped.bbox[:, 0::2] <= IMAGE_SIZE[0] - offset).all()
        assert (clipped.bbox[:, 1::2] <= IMAGE_SIZE[1] - offset).all()
        assert (clipped.bbox[:, 0::2] == IMAGE_SIZE[0] - offset).any()


def test_clip_in_xywh_mode_agrees_with_xyxy():
    corners = random_boxes(15, seed=4) * 1.5 - 10
    from_xyxy = BoxList(corners, IMAGE_SIZE).clip_to_image(remove_empty=True)
    from_xywh = BoxList(corners, IMAGE_SIZE).convert("xywh").clip_to_image(remove_empty=True)
    assert from_xywh.mode == "xywh"
    torch.testing.assert_close(from_xywh.convert("xyxy").bbox, from_xyxy.bbox)


def test_clip_of_a_view_of_a_leaf_requiring_grad_keeps_backward_working():
    leaf = torch.tensor([[-5.0, 2.0, 30.0, 50.0, 7.0], [10.0, 10.0, 90.0, 20.0, 1.0]], requires_grad=True)
    view = leaf[:, :4]  # a view, as regressed boxes often are
    boxes = BoxList(view, IMAGE_SIZE).clip_to_image(remove_empty=False)
    boxes.bbox.sum().backward()
    # clamped coordinates get no gradient, free ones get 1; the leaf itself is untouched
    expected = torch.tensor([[0.0, 1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 0.0, 1.0, 0.0]])
    assert torch.equal(leaf.grad, expected)
    assert leaf[0, 0].item() == -5.0


def test_indexing_keeps_fields():
    boxes = boxlist_with_fields(count=6)
    boxes.add_field("masks", SegmentationMask([[[0, 0, 5, 0, 5, 5 + i]] for i in range(6)], IMAGE_SIZE))
    for index in (2, slice(1, 4), [0, 5], torch.tensor([4, 1]), boxes.get_field("scores") > 0.5):
        subset = boxes[index]
        expected = torch.arange(6)[index] if not isinstance(index, int) else torch.tensor([index])
        assert torch.equal(subset.get_field("labels"), expected)
        torch.testing.assert_close(subset.bbox, boxes.bbox[expected])
        assert len(subset.get_field("masks")) == len(expected) == len(subset)
    last = boxes[[5]].get_field("masks").instances.polygons[0].polygons[0]
    assert last[-1].item() == 10.0


def test_fields_copy_and_errors():
    boxes = boxlist_with_fields()
    assert boxes.has_field("scores") and not boxes.has_field("masks")
    only_labels = boxes.copy_with_fields("labels")
    assert only_labels.fields() == ["labels"]
    assert boxes.copy_with_fields(["labels", "masks"], skip_missing=True).fields() == ["labels"]
    with pytest.raises(KeyError, match="masks"):
        boxes.copy_with_fields(["labels", "masks"])
    with pytest.raises(KeyError, match="masks"):
        boxes.get_field("masks")
    with pytest.raises(ValueError, match="xyxz"):
        BoxList(torch.zeros(1, 4), IMAGE_SIZE, mode="xyxz")
    with pytest.raises(ValueError, match=r"\(3, 5\)"):
        BoxList(torch.zeros(3, 5), IMAGE_SIZE)


def test_empty_boxlist_and_repr_and_to():
    empty = BoxList(torch.zeros(0), IMAGE_SIZE)
    assert empty.bbox.shape == (0, 4) and len(empty) == 0
    assert empty.area().shape == (0,)
    assert len(empty.clip_to_image()) == 0
    integer_boxes = BoxList([[1, 2, 3, 4]], IMAGE_SIZE)
    assert integer_boxes.bbox.dtype == torch.float32
    assert BoxList(torch.tensor([[1, 2, 3, 4]]), IMAGE_SIZE).bbox.dtype == torch.float32
    assert BoxList(torch.zeros(1, 4, dtype=torch.float64), IMAGE_SIZE).bbox.dtype == torch.float64
    moved = boxlist_with_fields().to("cpu")
    assert moved.fields() == ["labels", "scores"]
    assert repr(moved) == "BoxList(num_boxes=5, image_width=60, image_height=40, mode=xyxy)"
