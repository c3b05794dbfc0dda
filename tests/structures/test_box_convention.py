"""MODEL.BOX_CONVENTION: each rule that depends on it, pinned with values computed by hand in both
conventions (maskrcnn-benchmark's inclusive pixel corners, the default, and the continuous one of
torchvision / detectron2)."""
import math

import pytest
import torch

from maskrcnn_benchmark.config import cfg as default_cfg
from maskrcnn_benchmark.data.transforms import Resize
from maskrcnn_benchmark.modeling.box_coder import BoxCoder
from maskrcnn_benchmark.modeling.poolers import LevelMapper
from maskrcnn_benchmark.modeling.roi_heads.box_head.inference import make_roi_box_post_processor
from maskrcnn_benchmark.modeling.roi_heads.mask_head.inference import paste_mask_in_image
from maskrcnn_benchmark.modeling.rpn.anchor_generator import generate_anchors, make_anchor_generator_retinanet
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.box_convention import (
    CONTINUOUS,
    MASKRCNN_BENCHMARK,
    MASKRCNN_BENCHMARK_CUDA,
    box_convention,
    box_convention_from_config,
    common_box_convention,
)
from maskrcnn_benchmark.structures.boxlist_ops import boxlist_iou, boxlist_ml_nms, boxlist_nms


def test_the_default_config_is_maskrcnn_benchmarks_and_names_are_checked():
    assert box_convention_from_config(default_cfg) is MASKRCNN_BENCHMARK
    assert box_convention("continuous") is CONTINUOUS and box_convention(None) is MASKRCNN_BENCHMARK
    with pytest.raises(ValueError, match="MODEL.BOX_CONVENTION.*'detectron'"):
        box_convention("detectron")
    with pytest.raises(ValueError, match="anchors: continuous.*coder: maskrcnn_benchmark"):
        common_box_convention("head", anchors=CONTINUOUS, coder="maskrcnn_benchmark")
    assert common_box_convention("head", anchors=None, coder="continuous") is CONTINUOUS


# ---------------------------------------------------------------- anchors
def test_anchors_of_maskrcnn_benchmark_are_whole_pixels_about_the_centre_pixel():
    # stride 16: the cell is pixels 0..15, centre 7.5. Ratio 0.5: round(sqrt(256 / 0.5)) = 23 wide,
    # round(23 * 0.5) = 12 (half to even) high, times 32 / 16 -> 46 x 24, corners 7.5 -+ (46 - 1) / 2.
    # Ratio 1: 32 x 32. Ratio 2: round(sqrt(128)) = 11, 22 -> 22 x 44.
    anchors = generate_anchors(16, (32,), (0.5, 1.0, 2.0), MASKRCNN_BENCHMARK)
    assert anchors.tolist() == [[-15.0, -4.0, 30.0, 19.0], [-8.0, -8.0, 23.0, 23.0], [-3.0, -14.0, 18.0, 29.0]]
    # continuous: the exact areas and ratios, about 8.0
    half_w, half_h = 16 * math.sqrt(2), 16 / math.sqrt(2)
    expected = [[8 - half_w, 8 - half_h, 8 + half_w, 8 + half_h], [-8.0, -8.0, 24.0, 24.0],
                [8 - half_h, 8 - half_w, 8 + half_h, 8 + half_w]]
    torch.testing.assert_close(generate_anchors(16, (32,), (0.5, 1.0, 2.0), CONTINUOUS), torch.tensor(expected))


def test_octave_anchors_scale_the_rounded_ratio_shape_and_atss_centres_at_half_the_stride():
    # RetinaNet's second octave at stride 8: ratio 1 is 8 x 8 at the stride, times 2 ** (1 / 3) * 32 / 8
    cfg = default_cfg.clone()
    retina = list(make_anchor_generator_retinanet(cfg).cell_anchors)[0]
    side = 8 * (32 * 2 ** (1 / 3) / 8)
    assert retina.shape == (9, 4)
    torch.testing.assert_close(retina[4], torch.tensor([3.5 - (side - 1) / 2, 3.5 - (side - 1) / 2,
                                                        3.5 + (side - 1) / 2, 3.5 + (side - 1) / 2]))
    # ATSS / PAA (their anchor generator): the same shapes centred on 4.0
    atss = list(make_anchor_generator_retinanet(cfg, cfg.MODEL.ATSS, centre_at_half_stride=True).cell_anchors)[0]
    assert ((atss[:, :2] + atss[:, 2:]) / 2 == 4.0).all()
    cfg.MODEL.BOX_CONVENTION = "continuous"
    retina = list(make_anchor_generator_retinanet(cfg).cell_anchors)[0]
    torch.testing.assert_close(retina[4], torch.tensor([4 - 32 * 2 ** (1 / 3) / 2] * 2 + [4 + 32 * 2 ** (1 / 3) / 2] * 2))


# ---------------------------------------------------------------- box coding, IoU
def test_decode_hand_computed():
    box = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    deltas = torch.tensor([[0.1, 0.0, math.log(2.0), 0.0]])
    # inclusive: 11 wide, centre 5.5 -> centre 6.6, 22 wide: 6.6 - 11 and 6.6 + 11 - 1
    decoded = BoxCoder((1.0, 1.0, 1.0, 1.0), convention=MASKRCNN_BENCHMARK).decode(deltas, box)
    torch.testing.assert_close(decoded, torch.tensor([[-4.4, 0.0, 16.6, 10.0]]))
    # continuous: 10 wide, centre 5 -> centre 6, 20 wide
    decoded = BoxCoder((1.0, 1.0, 1.0, 1.0), convention=CONTINUOUS).decode(deltas, box)
    torch.testing.assert_close(decoded, torch.tensor([[-4.0, 0.0, 16.0, 10.0]]))


def test_iou_hand_computed():
    first = BoxList(torch.tensor([[0.0, 0.0, 9.0, 9.0]]), (50, 50))
    second = BoxList(torch.tensor([[5.0, 0.0, 14.0, 9.0]]), (50, 50))
    # inclusive: 10 x 10 pixels each, 5 x 10 shared -> 50 / 150; continuous: 9 x 9, 4 x 9 -> 36 / 126
    assert boxlist_iou(first, second, MASKRCNN_BENCHMARK).item() == pytest.approx(1 / 3)
    assert boxlist_iou(first, second, CONTINUOUS).item() == pytest.approx(2 / 7)


# ---------------------------------------------------------------- NMS and ties
def _tie_boxes(offset):
    # IoU exactly 0.5 in the convention whose pixel offset is ``offset``: a box and one twice as tall
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 20.0], [30.0, 30.0, 40.0, 40.0]])
    boxes[:, 2:] -= offset
    boxlist = BoxList(boxes, (64, 64))
    boxlist.add_field("scores", torch.tensor([0.9, 0.8, 0.7]))
    boxlist.add_field("labels", torch.tensor([1, 1, 1]))
    boxlist.add_field("ids", torch.tensor([0, 1, 2]))
    return boxlist


@pytest.mark.parametrize("convention, kept", [
    (MASKRCNN_BENCHMARK, [0, 2]),       # maskrcnn-benchmark's CPU kernel: IoU >= 0.5 suppresses
    (MASKRCNN_BENCHMARK_CUDA, [0, 1, 2]),  # its CUDA kernel: only IoU > 0.5
    (CONTINUOUS, [0, 1, 2]),
])
def test_nms_keep_list_with_an_iou_equal_to_the_threshold(convention, kept):
    boxes = _tie_boxes(convention.pixel_offset)
    assert boxlist_iou(boxes[[0]], boxes[[1]], convention).item() == 0.5
    assert boxlist_nms(boxes, 0.5, convention=convention).get_field("ids").tolist() == kept
    # the RoI box head's per-class NMS follows the same rule
    cfg = default_cfg.clone()
    cfg.MODEL.BOX_CONVENTION = convention.name
    post = make_roi_box_post_processor(cfg)
    threshold, legacy = post.convention.nms_arguments(0.5)
    from maskrcnn_benchmark.layers.nms import batched_nms

    keep = batched_nms(boxes.bbox, boxes.get_field("scores"), boxes.get_field("labels"), threshold, legacy=legacy)
    assert keep.tolist() == kept
    # the dense heads' class-wise NMS (the forks' ml_nms, a CUDA kernel) keeps ties in either
    assert boxlist_ml_nms(boxes, 0.5, convention=convention).get_field("ids").tolist() == [0, 1, 2]


def test_the_threshold_is_a_float32_as_in_maskrcnn_benchmarks_kernels():
    # inclusive corners: 5 x 1 and 3 x 1 pixels, one inside the other: IoU 3 / 5, which in float32 is
    # 0.6000000238 = float32(0.6). IoU >= 0.6 (the CPU kernel) suppresses; the forks' ml_nms (IoU > 0.6
    # in float32) keeps both, where a comparison with the double 0.6 would suppress
    boxes = BoxList(torch.tensor([[0.0, 0.0, 4.0, 0.0], [1.0, 0.0, 3.0, 0.0]]), (10, 10))
    boxes.add_field("scores", torch.tensor([0.9, 0.8]))
    boxes.add_field("labels", torch.tensor([1, 1]))
    assert boxlist_iou(boxes, boxes, MASKRCNN_BENCHMARK)[0, 1].item() == torch.tensor(0.6).item()
    assert len(boxlist_nms(boxes, 0.6, convention=MASKRCNN_BENCHMARK)) == 1
    assert len(boxlist_ml_nms(boxes, 0.6, convention=MASKRCNN_BENCHMARK)) == 2
    assert len(boxlist_nms(boxes, 0.6, convention=MASKRCNN_BENCHMARK_CUDA)) == 2


def test_one_pixel_boxes_are_not_empty_with_inclusive_corners():
    # a box with x1 == x2 is one column of pixels: IoU 1 with itself, and NMS suppresses its copy
    boxes = BoxList(torch.tensor([[5.0, 0.0, 5.0, 9.0]] * 2), (20, 20))
    boxes.add_field("scores", torch.tensor([0.9, 0.8]))
    assert boxlist_iou(boxes, boxes, MASKRCNN_BENCHMARK)[0, 1].item() == 1.0
    assert len(boxlist_nms(boxes, 0.5, convention=MASKRCNN_BENCHMARK)) == 1
    assert boxlist_iou(boxes, boxes, CONTINUOUS)[0, 1].item() == 0.0


# ---------------------------------------------------------------- level mapper, resize, pasting
def test_level_mapper_uses_the_conventions_area():
    # 223 -> 224 pixels wide with inclusive corners: level 4 (index 2), continuous 223 < 224: level 3
    boxes = BoxList(torch.tensor([[0.0, 0.0, 223.0, 223.0]]), (500, 500))
    assert LevelMapper(2, 5, convention=MASKRCNN_BENCHMARK)([boxes]).tolist() == [2]
    assert LevelMapper(2, 5, convention=CONTINUOUS)([boxes]).tolist() == [1]


def test_resized_side_is_truncated_by_maskrcnn_benchmark_and_rounded_in_continuous():
    # 640 x 480 to a short side of 800: 800 * 640 / 480 = 1066.67
    assert Resize(800, 1333, MASKRCNN_BENCHMARK).get_size((640, 480)) == (800, 1066)
    assert Resize(800, 1333, CONTINUOUS).get_size((640, 480)) == (800, 1067)
    # the cap on the long side: 1333 * 480 / 1000 = 639.84 -> 640 in both, then 1333.33 vs 1333
    assert Resize(800, 1333, MASKRCNN_BENCHMARK).get_size((1000, 480)) == (640, 1333)
    assert Resize(800, 1333, CONTINUOUS).get_size((1000, 480)) == (640, 1333)


@pytest.mark.parametrize("box, inclusive, continuous", [
    # an integral right / bottom edge: maskrcnn-benchmark pastes through that pixel
    ((2.0, 1.0, 6.0, 4.0), (slice(1, 5), slice(2, 7)), (slice(1, 4), slice(2, 6))),
    # fractional corners: truncation + 1 and floor / ceil cover the same pixels
    ((2.6, 1.2, 5.9, 3.5), (slice(1, 4), slice(2, 6)), (slice(1, 4), slice(2, 6))),
    # a negative corner truncates towards zero (-1.5 -> -1), floor gives -2; both clip at 0
    ((-1.5, 0.0, 3.0, 2.0), (slice(0, 3), slice(0, 4)), (slice(0, 2), slice(0, 3))),
])
def test_pasted_mask_covers_the_conventions_pixels(box, inclusive, continuous):
    mask = torch.ones(4, 4)  # padding 0: the box is not expanded
    for convention, region in ((MASKRCNN_BENCHMARK, inclusive), (CONTINUOUS, continuous)):
        pasted = paste_mask_in_image(mask, torch.tensor(box), 8, 10, thresh=0.5, padding=0, convention=convention)
        expected = torch.zeros(8, 10, dtype=pasted.dtype)
        expected[region] = 1
        assert torch.equal(pasted, expected), convention.name
