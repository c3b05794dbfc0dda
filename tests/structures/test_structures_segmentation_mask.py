import numpy as np
import pycocotools.mask as mask_utils
import pytest
import torch

from maskrcnn_benchmark.structures.segmentation_mask import (
    FLIP_LEFT_RIGHT,
    FLIP_TOP_BOTTOM,
    BinaryMaskList,
    PolygonInstance,
    PolygonList,
    SegmentationMask,
)

WIDTH, HEIGHT = 64, 48
SIZE = (WIDTH, HEIGHT)

# COCO-style annotations: one list of flat polygons per object
POLYGONS = [
    [[10.0, 5.0, 30.0, 8.0, 25.0, 30.0, 8.0, 20.0]],  # quadrilateral
    [[40.0, 10.0, 60.0, 10.0, 50.0, 40.0], [35.0, 40.0, 45.0, 40.0, 45.0, 46.0, 35.0, 46.0]],  # two parts
    [[5.5, 33.2, 20.7, 35.1, 18.3, 44.9, 3.1, 43.0, 2.0, 38.0]],  # pentagon, fractional vertices
]


def iou(first, second):
    first, second = first.bool(), second.bool()
    return ((first & second).sum() / (first | second).sum()).item()


def coco_area(polygons, height=HEIGHT, width=WIDTH):
    return float(mask_utils.area(mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))))


def shoelace_area(polygon):
    x, y = np.asarray(polygon[0::2]), np.asarray(polygon[1::2])
    return 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


@pytest.mark.parametrize("mode", ["poly", "mask"])
def test_flip_twice_is_identity(mode):
    masks = SegmentationMask(POLYGONS, SIZE, mode=mode)
    for method in (FLIP_LEFT_RIGHT, FLIP_TOP_BOTTOM):
        twice = masks.transpose(method).transpose(method)
        assert twice.mode == mode
        assert torch.equal(twice.get_mask_tensor(), masks.get_mask_tensor())
        once = masks.transpose(method).get_mask_tensor()
        assert not torch.equal(once, masks.get_mask_tensor())


def test_flip_agrees_between_polygons_and_masks():
    polygons = SegmentationMask(POLYGONS, SIZE, mode="poly")
    masks = polygons.convert("mask")
    for method, dim in ((FLIP_LEFT_RIGHT, -1), (FLIP_TOP_BOTTOM, -2)):
        flipped_polygons = polygons.transpose(method).get_mask_tensor()
        assert torch.equal(masks.transpose(method).get_mask_tensor(), masks.get_mask_tensor().flip(dim))
        assert iou(flipped_polygons, masks.get_mask_tensor().flip(dim)) > 0.95


def test_polygon_to_mask_area_matches_pycocotools_and_shoelace():
    masks = SegmentationMask(POLYGONS, SIZE).get_mask_tensor()
    for instance, mask in zip(POLYGONS, masks):
        assert mask.sum().item() == coco_area(instance)
        exact = sum(shoelace_area(polygon) for polygon in instance)
        assert mask.sum().item() == pytest.approx(exact, rel=0.1)


def test_axis_aligned_polygon_covers_exactly_its_pixels():
    mask = SegmentationMask([[[2, 3, 7, 3, 7, 9, 2, 9]]], SIZE).get_mask_tensor()
    expected = torch.zeros(HEIGHT, WIDTH, dtype=torch.uint8)
    expected[3:9, 2:7] = 1
    assert torch.equal(mask, expected)  # single instance: H x W, as maskrcnn-benchmark


def test_mask_to_polygon_to_mask_round_trip():
    original = SegmentationMask(POLYGONS, SIZE).convert("mask")
    generator = torch.Generator().manual_seed(0)
    blobs = (torch.rand(1, HEIGHT // 4, WIDTH // 4, generator=generator) > 0.6).to(torch.uint8)
    blobs = blobs.repeat_interleave(4, dim=1).repeat_interleave(4, dim=2)
    all_masks = torch.cat([original.instances.masks, blobs])
    back = SegmentationMask(all_masks, SIZE, mode="mask").convert("poly").convert("mask").get_mask_tensor()
    for before, after in zip(all_masks, back):
        assert iou(before, after) > 0.97


def test_resize_there_and_back_is_close_in_both_modes():
    for mode in ("poly", "mask"):
        masks = SegmentationMask(POLYGONS, SIZE, mode=mode)
        doubled = masks.resize((WIDTH * 2, HEIGHT * 2))
        assert doubled.size == (WIDTH * 2, HEIGHT * 2)
        assert doubled.get_mask_tensor().shape == (3, HEIGHT * 2, WIDTH * 2)
        back = doubled.resize(SIZE).get_mask_tensor()
        for before, after in zip(masks.get_mask_tensor(), back):
            assert iou(before, after) > 0.9
        # an area scales with the product of the two ratios
        stretched = masks.resize((WIDTH * 2, HEIGHT)).get_mask_tensor().sum(dim=(1, 2)).float()
        torch.testing.assert_close(stretched, masks.get_mask_tensor().sum(dim=(1, 2)).float() * 2, rtol=0.08, atol=0)


def test_crop_matches_cropping_the_mask_tensor():
    box = (8, 6, 48, 38)
    polygons = SegmentationMask(POLYGONS, SIZE, mode="poly")
    masks = polygons.convert("mask")
    reference = masks.get_mask_tensor()[:, 6:38, 8:48]
    cropped_masks = masks.crop(box)
    assert cropped_masks.size == (40, 32)
    assert torch.equal(cropped_masks.get_mask_tensor(), reference)
    cropped_polygons = polygons.crop(box).get_mask_tensor()
    assert cropped_polygons.shape == reference.shape
    for from_polygons, expected in zip(cropped_polygons, reference):
        assert iou(from_polygons, expected) > 0.95


def test_polygon_crop_clips_rather_than_clamps_vertices():
    # a triangle whose hypotenuse passes outside the crop box's top-left corner: the corner
    # region belongs to the object, and clamping the vertices would lose it
    triangle = PolygonInstance([[-10.0, 5.0, 5.0, -10.0, 20.0, 20.0]], SIZE)
    cropped = triangle.crop((0, 0, 10, 10))
    assert cropped.convert_to_binarymask()[0, 0].item() == 1
    full = triangle.convert_to_binarymask()
    assert torch.equal(cropped.convert_to_binarymask(), full[:10, :10])


def test_crop_outside_the_image_pads_with_zeros():
    masks = SegmentationMask(POLYGONS, SIZE, mode="mask")
    cropped = masks.crop((-4, -4, 12, 12))
    assert cropped.get_mask_tensor().shape == (3, 16, 16)
    assert cropped.get_mask_tensor()[:, :4, :].sum() == 0
    torch.testing.assert_close(cropped.get_mask_tensor()[:, 4:, 4:], masks.get_mask_tensor()[:, :12, :12])
    from_polygons = SegmentationMask(POLYGONS, SIZE).crop((-4, -4, 12, 12)).get_mask_tensor()
    assert from_polygons.shape == (3, 16, 16)


def test_mask_head_style_crop_and_resize_per_instance():
    masks = SegmentationMask(POLYGONS, SIZE)
    proposal = torch.tensor([9.5, 4.5, 31.0, 31.0])
    target = masks[0].crop(proposal).resize((28, 28)).get_mask_tensor()
    assert target.shape == (28, 28)
    assert 0.4 < target.float().mean().item() < 0.9


def test_indexing_and_iteration():
    for mode in ("poly", "mask"):
        masks = SegmentationMask(POLYGONS, SIZE, mode=mode)
        assert len(masks) == 3
        full = masks.get_mask_tensor()
        for index in (1, [2, 0], torch.tensor([0, 2]), torch.tensor([True, False, True]), slice(1, None)):
            subset = masks[index]
            expected = full[[index]] if isinstance(index, int) else full[index]
            assert subset.mode == mode
            assert torch.equal(subset.convert("mask").instances.masks, expected)
        assert [len(one) for one in masks] == [1, 1, 1]
        assert len(masks[torch.zeros(3, dtype=torch.bool)]) == 0


def test_accepts_coco_loader_inputs():
    # polygons, an uncompressed RLE (crowd), a compressed RLE and a decoded mask, mixed freely
    crowd_mask = np.zeros((HEIGHT, WIDTH), dtype=np.uint8, order="F")
    crowd_mask[20:30, 10:50] = 1
    compressed = mask_utils.encode(crowd_mask)
    uncompressed = {"size": [HEIGHT, WIDTH], "counts": _uncompressed_counts(crowd_mask)}
    instances = [POLYGONS[0], uncompressed, compressed, torch.from_numpy(crowd_mask.copy())]
    for mode in ("poly", "mask"):
        masks = SegmentationMask(instances, SIZE, mode=mode).get_mask_tensor()
        assert masks.shape == (4, HEIGHT, WIDTH)
        for decoded in masks[1:]:
            assert torch.equal(decoded, torch.from_numpy(crowd_mask))
    tensor_masks = SegmentationMask(torch.from_numpy(crowd_mask)[None].repeat(2, 1, 1), SIZE, mode="mask")
    assert len(tensor_masks) == 2


def _uncompressed_counts(mask):
    """Run lengths of a mask in column-major order, starting with a run of zeros."""
    flat = mask.flatten(order="F")
    counts, current, run = [], 0, 0
    for value in flat:
        if value == current:
            run += 1
        else:
            counts.append(run)
            current, run = value, 1
    counts.append(run)
    return counts


def test_degenerate_polygons_are_dropped_and_empty_lists_work():
    instance = PolygonInstance([[1.0, 2.0, 3.0, 4.0], [0, 0, 4, 0, 4, 4]], SIZE)
    assert len(instance) == 1
    empty = SegmentationMask([], SIZE)
    assert len(empty) == 0
    assert empty.convert("mask").instances.masks.shape == (0, HEIGHT, WIDTH)
    assert len(empty.resize((10, 10)).convert("mask")) == 0
    blank = BinaryMaskList(torch.zeros(1, HEIGHT, WIDTH), SIZE).convert_to_polygon()
    assert isinstance(blank, PolygonList) and len(blank.polygons[0]) == 0


def test_bad_inputs_name_the_culprit():
    with pytest.raises(ValueError, match="odd number"):
        PolygonInstance([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]], SIZE)
    with pytest.raises(ValueError, match="mode='bitmap'"):
        SegmentationMask(POLYGONS, SIZE, mode="bitmap")
    with pytest.raises(ValueError, match=r"N x 48 x 64"):
        BinaryMaskList(torch.zeros(2, 10, 10), SIZE)
    with pytest.raises(TypeError, match="str"):
        SegmentationMask("polygons.json", SIZE)
    with pytest.raises(ValueError, match="transpose method"):
        SegmentationMask(POLYGONS, SIZE).transpose(5)
