"""SegmentationMask.crop of polygons and of binary masks agree to a pixel: same raster size and
frame for any box (whole-pixel, fractional, partly outside the image), and the only pixels on
which they differ lie on the object's edge (the rasterisers round edges differently)."""
import math

import pytest
import torch
import torch.nn.functional as F

from maskrcnn_benchmark.structures.segmentation_mask import SegmentationMask

SIZE = (48, 40)  # width, height


def _star(cx, cy, radius):
    points = []
    for k in range(10):
        r = radius if k % 2 == 0 else 0.45 * radius
        points += [cx + r * math.cos(math.pi * k / 5 + 0.3), cy + r * math.sin(math.pi * k / 5 + 0.3)]
    return points


SHAPES = {
    "convex quad": [[2.3, 3.1, 20.7, 5.2, 15.2, 25.9, 4.4, 18.8]],
    "concave star": [_star(20, 18, 14)],
    "two parts": [[30, 2, 44, 4, 40, 14], [5, 28, 12, 26, 14, 36, 6, 38]],
    "beyond the image": [[-4, 10, 20, -3, 50, 30, 10, 42]],
}
CROPS = {
    "whole pixels": (3, 4, 20, 22),
    "fractional": (2.6, 3.4, 18.4, 20.5),
    "fractional, larger": (11.4, 6.6, 37.7, 33.3),
    "over the top-left corner": (-3.3, -2.2, 12.1, 14.8),
    "over the bottom-right corner": (10, 10, 60, 50),
    "the whole image": (0, 0, 48, 40),
    "small": (17.5, 15.5, 22.5, 21.5),
    "under one pixel": (7.2, 9.9, 8.1, 10.6),
}


def _edge(mask):
    """Pixels within one pixel (3 x 3 neighbourhood) of a change of value."""
    m = mask.float()[None, None]
    dilated = F.max_pool2d(m, 3, 1, 1)[0, 0] > 0
    eroded = -F.max_pool2d(-m, 3, 1, 1)[0, 0] > 0
    return dilated & ~eroded


@pytest.mark.parametrize("crop", list(CROPS), ids=list(CROPS))
@pytest.mark.parametrize("shape", list(SHAPES), ids=list(SHAPES))
def test_polygon_and_mask_crops_agree_to_a_pixel(shape, crop):
    polygons = SegmentationMask([SHAPES[shape]], SIZE, mode="poly")
    masks = polygons.convert("mask")
    box = CROPS[crop]
    from_polygons = polygons.crop(box).get_mask_tensor()
    from_masks = masks.crop(box).get_mask_tensor()
    expected_size = (max(round(box[3] - box[1]), 1), max(round(box[2] - box[0]), 1))
    assert tuple(from_polygons.shape) == tuple(from_masks.shape) == expected_size
    differ = from_polygons != from_masks
    off_edge = differ & ~(_edge(from_polygons) | _edge(from_masks))
    assert not off_edge.any(), "pixels away from the object's edge differ: {}".format(off_edge.nonzero().tolist())
    if all(float(v) == int(v) for v in box):
        # whole-pixel crops: the same pixels but for the rounding of the clipped edges
        assert int(differ.sum()) <= 8


def test_whole_pixel_crop_inside_the_image_is_the_sub_array():
    masks = SegmentationMask([SHAPES["concave star"]], SIZE, mode="mask")
    full = masks.get_mask_tensor()
    assert torch.equal(masks.crop((3, 4, 20, 22)).get_mask_tensor(), full[4:22, 3:20])


def test_fractional_crop_takes_the_nearest_source_pixels():
    masks = SegmentationMask([SHAPES["convex quad"]], SIZE, mode="mask")
    full = masks.get_mask_tensor()
    # pixel j of the crop is centred at 2.6 + j + 0.5 -> source pixel 3 + j; 15.8 x 17.1 -> 16 x 17
    cropped = masks.crop((2.6, 3.4, 18.4, 20.5)).get_mask_tensor()
    assert torch.equal(cropped, full[3:20, 3:19])


def test_polygon_parts_outside_the_image_are_not_in_the_crop():
    polygons = SegmentationMask([SHAPES["beyond the image"]], SIZE, mode="poly")
    cropped = polygons.crop((-5, -5, 10, 10)).get_mask_tensor()
    assert cropped[:5, :].sum() == 0 and cropped[:, :5].sum() == 0  # the 5 rows / columns before the image
