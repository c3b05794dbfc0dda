"""Transforms keep image, boxes and masks consistent."""
import numpy as np
import pytest
import torch
from PIL import Image

from maskrcnn_benchmark.config import cfg as default_cfg
from maskrcnn_benchmark.data.transforms import (Compose, Normalize, RandomHorizontalFlip,
                                                RandomVerticalFlip, Resize, ToBoxConvention, ToTensor,
                                                build_transforms)
from maskrcnn_benchmark.data.datasets.shapes import rasterize_polygon
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.box_convention import CONTINUOUS, MASKRCNN_BENCHMARK
from maskrcnn_benchmark.structures.segmentation_mask import SegmentationMask

WIDTH, HEIGHT = 64, 48
POLYGON = [10.0, 8.0, 30.0, 8.0, 30.0, 20.0, 10.0, 20.0]  # a 20 x 12 rectangle


def _sample():
    mask = rasterize_polygon(POLYGON, HEIGHT, WIDTH)
    pixels = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    pixels[mask.astype(bool)] = (255, 0, 0)
    target = BoxList(torch.tensor([[10.0, 8.0, 30.0, 20.0]]), (WIDTH, HEIGHT))
    target.add_field("labels", torch.tensor([2]))
    target.add_field("masks", SegmentationMask([[POLYGON]], (WIDTH, HEIGHT)))
    return Image.fromarray(pixels), target


def _mask_of(target):
    return target.get_field("masks").instances.convert_to_binarymask().masks[0].numpy()


def _red(image):
    return (np.asarray(image)[..., 0] > 127).astype(np.uint8)


@pytest.mark.parametrize("flip", [RandomHorizontalFlip(1.0, CONTINUOUS), RandomVerticalFlip(1.0, CONTINUOUS)])
def test_flip_moves_pixels_boxes_and_masks_together_and_twice_is_identity(flip):
    image, target = _sample()
    flipped_image, flipped = flip(image, target)
    assert np.array_equal(_red(flipped_image), _mask_of(flipped))
    if isinstance(flip, RandomHorizontalFlip):
        assert flipped.bbox.tolist() == [[WIDTH - 30.0, 8.0, WIDTH - 10.0, 20.0]]
    else:
        assert flipped.bbox.tolist() == [[10.0, HEIGHT - 20.0, 30.0, HEIGHT - 8.0]]
    back_image, back = flip(flipped_image, flipped)
    assert np.array_equal(np.asarray(back_image), np.asarray(image))
    torch.testing.assert_close(back.bbox, target.bbox)
    assert np.array_equal(_mask_of(back), _mask_of(target))


@pytest.mark.parametrize("flip", [RandomHorizontalFlip(1.0), RandomVerticalFlip(1.0)])
def test_flip_of_inclusive_corners_keeps_the_box_on_the_red_pixels(flip):
    # maskrcnn-benchmark's boxes name the first and last pixel: pixels 10..29 x 8..19 here
    image, target = Compose([ToBoxConvention(MASKRCNN_BENCHMARK)])(*_sample())
    assert target.bbox.tolist() == [[10.0, 8.0, 29.0, 19.0]]
    flipped_image, flipped = flip(image, target)
    rows, columns = np.nonzero(_red(flipped_image))
    assert flipped.bbox.tolist() == [[columns.min(), rows.min(), columns.max(), rows.max()]]


def test_flip_with_probability_zero_changes_nothing():
    image, target = _sample()
    out_image, out = RandomHorizontalFlip(0.0)(image, target)
    assert out_image is image and out is target


def test_resize_respects_min_and_max_size_and_scales_boxes_and_masks():
    image, target = _sample()
    resized_image, resized = Resize(96, 1000)(image, target)
    assert resized_image.size == (128, 96) == resized.size
    torch.testing.assert_close(resized.bbox, torch.tensor([[20.0, 16.0, 60.0, 40.0]]))
    assert np.array_equal(_red(resized_image), _mask_of(resized))
    # the longer side is capped at max_size
    assert Resize(96, 100).get_size((WIDTH, HEIGHT)) == (75, 100)
    # a tuple of sizes draws one of them
    assert {Resize((24, 48), 1000).get_size((WIDTH, HEIGHT))[0] for _ in range(50)} == {24, 48}


def test_to_tensor_and_normalize_to_bgr255():
    image, target = _sample()
    tensor, _ = Compose([ToTensor(), Normalize([1.0, 2.0, 3.0], [2.0, 2.0, 2.0], True)])(image, target)
    red = _mask_of(target).astype(bool)
    assert tensor.shape == (3, HEIGHT, WIDTH)
    # BGR order: the red channel is last
    assert torch.allclose(tensor[2][torch.from_numpy(red)], torch.tensor((255.0 - 3.0) / 2.0))
    assert torch.allclose(tensor[0], torch.tensor(-0.5))


def test_build_transforms_reads_the_input_keys():
    cfg = default_cfg.clone()
    cfg.merge_from_list(["INPUT.MIN_SIZE_TRAIN", (32,), "INPUT.MAX_SIZE_TRAIN", 1000,
                         "INPUT.MIN_SIZE_TEST", 24, "INPUT.HORIZONTAL_FLIP_PROB_TRAIN", 0.0])
    image, target = _sample()
    train_image, train_target = build_transforms(cfg, True)(image, target)
    test_image, _ = build_transforms(cfg, False)(image, target)
    # 64 x 48 to a short side of 32: 42.67 truncated (maskrcnn-benchmark), the far box corner one
    # pixel in (its last pixel)
    assert train_image.shape == (3, 32, 42) and train_target.size == (42, 32)
    torch.testing.assert_close(train_target.bbox, torch.tensor([[10 * 42 / 64, 8 * 32 / 48, 29 * 42 / 64, 19 * 32 / 48]]))
    assert test_image.shape == (3, 24, 32)
    cfg.merge_from_list(["MODEL.BOX_CONVENTION", "continuous"])
    train_image, train_target = build_transforms(cfg, True)(image, target)
    assert train_image.shape == (3, 32, 43) and train_target.size == (43, 32)
