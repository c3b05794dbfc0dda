"""RoI heads: pooler vs torchvision's roi_align, box loss (sampler switch, hand formula),
post-processing vs a per-class torchvision NMS loop, mask targets and pasting, RoI optimal bias."""
import math

import pytest
import torch
from torch.nn import functional as F
from torchvision.ops import nms as tv_nms
from torchvision.ops import roi_align as tv_roi_align

from maskrcnn_benchmark.config import cfg as global_cfg
from maskrcnn_benchmark.modeling.box_coder import BoxCoder
from maskrcnn_benchmark.modeling.poolers import LevelMapper, Pooler
from maskrcnn_benchmark.modeling.roi_heads.box_head.box_head import build_roi_box_head
from maskrcnn_benchmark.modeling.roi_heads.box_head.inference import PostProcessor
from maskrcnn_benchmark.modeling.roi_heads.box_head.loss import make_roi_box_loss_evaluator
from maskrcnn_benchmark.modeling.roi_heads.mask_head.inference import Masker, paste_mask_in_image
from maskrcnn_benchmark.modeling.roi_heads.mask_head.loss import project_masks_on_boxes
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.box_convention import CONTINUOUS
from maskrcnn_benchmark.structures.segmentation_mask import SegmentationMask


def boxlist(boxes, size, labels=None):
    result = BoxList(torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4), size)
    if labels is not None:
        result.add_field("labels", torch.as_tensor(labels, dtype=torch.int64))
    return result


def shapes_cfg(monkeypatch, *pairs):
    cfg = global_cfg.clone()
    cfg.merge_from_file("configs/shapes/faster_rcnn_R_18_FPN_shapes.yaml")
    cfg.merge_from_list(list(pairs))
    for key, value in cfg.MODEL.GROUP_NORM.items():
        monkeypatch.setitem(global_cfg.MODEL.GROUP_NORM, key, value)
    return cfg


# ---------------------------------------------------------------- pooling
def test_level_mapper_follows_the_fpn_rule():
    mapper = LevelMapper(2, 5, convention=CONTINUOUS)
    boxes = boxlist([[0, 0, 224, 224], [0, 0, 112, 112], [0, 0, 10, 10], [0, 0, 1000, 1000], [0, 0, 447, 447]], (2000, 2000))
    # k = floor(4 + log2(sqrt(area) / 224)), clamped to [2, 5], minus 2
    assert mapper([boxes]).tolist() == [2, 1, 0, 3, 2]
    # maskrcnn-benchmark's area (the default) is (x2 - x1 + 1)(y2 - y1 + 1): 447 -> 448 pixels, level 5
    assert LevelMapper(2, 5)([boxes]).tolist() == [2, 1, 0, 3, 3]
    assert LevelMapper(2, 5)([boxlist([[0, 0, 223, 223], [0, 0, 222, 222]], (2000, 2000))]).tolist() == [2, 1]


def test_pooler_equals_torchvision_roi_align_on_the_mapped_level():
    torch.manual_seed(0)
    scales = (0.25, 0.125, 0.0625, 0.03125)
    features = [torch.randn(2, 4, 128 // int(1 / s), 128 // int(1 / s)) for s in scales]
    xy = torch.rand(40, 2) * 64
    boxes = torch.cat([xy, xy + 4 + torch.rand(40, 2) * 60], dim=1)
    proposals = [BoxList(boxes[:25], (128, 128)), BoxList(boxes[25:], (128, 128))]
    pooled = Pooler((7, 7), scales, sampling_ratio=2)(features, proposals)
    assert pooled.shape == (40, 4, 7, 7)

    image_index = torch.tensor([0] * 25 + [1] * 15, dtype=torch.float32)[:, None]
    rois = torch.cat([image_index, boxes], dim=1)
    size = torch.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    level = torch.clamp(torch.floor(4 + torch.log2(size / 224 + 1e-6)), 2, 5).long() - 2
    for i in range(40):
        expected = tv_roi_align(features[level[i]], rois[i:i + 1], (7, 7), scales[level[i]], 2, aligned=False)
        assert torch.allclose(pooled[i:i + 1], expected, atol=1e-5)


def _pooler_reference(features, rois, levels, scales, output_size):
    """Every RoI pooled by torchvision on its level, stacked in RoI order (autograd throughout)."""
    rows = []
    for roi, level in zip(rois, levels.tolist()):
        if level < 0:
            rows.append(features[0].new_zeros((1, features[0].shape[1]) + output_size))
        else:
            rows.append(tv_roi_align(features[level], roi[None], output_size, scales[level], 2, aligned=False))
    return torch.cat(rows)


@pytest.mark.parametrize("feature_dtype", [torch.float64, torch.bfloat16])
def test_pooler_gradients_equal_torchvision_per_level(feature_dtype):
    torch.manual_seed(1)
    scales = (0.25, 0.125, 0.0625, 0.03125)
    shapes = [(2, 3, 128, 128), (2, 3, 64, 64), (2, 3, 32, 32), (2, 3, 16, 16)]
    # Sides put RoIs on levels 2, 3 and 4 (FPN rule: < 112 px, < 224 px, < 448 px); level 5
    # gets none, row 5 is inverted (NaN size: no level, a zero row, no gradient).
    sides = torch.tensor([20.0, 30, 60, 150, 200, 300, 10, 40, 130, 90, 35, 50], dtype=torch.float64)
    xy = torch.rand(12, 2, dtype=torch.float64) * 150
    boxes = torch.cat([xy, xy + sides[:, None] * (0.8 + 0.4 * torch.rand(12, 2, dtype=torch.float64))], dim=1)
    boxes[5] = torch.tensor([30.0, 30.0, 10.0, 50.0])
    proposals = [BoxList(boxes[:7], (512, 512)), BoxList(boxes[7:], (512, 512))]
    levels = LevelMapper(2, 5)(proposals)
    levels[5] = -1
    assert set(levels.tolist()) == {-1, 0, 1, 2}
    features = [torch.randn(shape, dtype=torch.float64) for shape in shapes]
    ours_in = [f.clone().to(feature_dtype).requires_grad_() for f in features]
    ref_in = [f.clone().requires_grad_() for f in features]

    pooled = Pooler((3, 3), scales, sampling_ratio=2)(ours_in, proposals)
    image_index = torch.tensor([0.0] * 7 + [1.0] * 5, dtype=torch.float64)[:, None]
    rois = torch.cat([image_index, boxes], dim=1)
    expected = _pooler_reference(ref_in, rois, levels, scales, (3, 3))
    weights = torch.randn(expected.shape, dtype=torch.float64)
    (pooled.double() * weights).sum().backward()
    (expected * weights).sum().backward()

    tolerance = dict(atol=1e-9, rtol=1e-9) if feature_dtype == torch.float64 else dict(atol=0.05, rtol=0.02)
    assert pooled.dtype == feature_dtype
    torch.testing.assert_close(pooled.double(), expected.detach(), **tolerance)
    for level, (ours, ref) in enumerate(zip(ours_in, ref_in)):
        if ref.grad is None:  # no RoI on this level: no gradient on either side
            assert ours.grad is None, level
            continue
        assert ours.grad.dtype == feature_dtype, level
        torch.testing.assert_close(ours.grad.double(), ref.grad, **tolerance)


def test_pooler_backward_does_not_copy_the_whole_gradient_per_level():
    # Many RoIs over four levels. Backward needs each level's rows of the output gradient once
    # and the feature-map gradients; index assignment under autograd would also clone the whole
    # output gradient once per level (4 extra output-sized buffers here).
    from torch.profiler import ProfilerActivity, profile

    torch.manual_seed(0)
    scales = (0.25, 0.125, 0.0625, 0.03125)
    features = [torch.randn(1, 32, 1024 // int(1 / s), 1024 // int(1 / s), requires_grad=True) for s in scales]
    xy = torch.rand(2000, 2) * 300
    sides = torch.exp(torch.rand(2000, 1) * math.log(700 / 8.0)) * 8 * (0.8 + 0.4 * torch.rand(2000, 2))
    proposals = [BoxList(torch.cat([xy, xy + sides], dim=1), (1024, 1024))]
    pooled = Pooler((7, 7), scales, sampling_ratio=2)(features, proposals)
    assert LevelMapper(2, 5)(proposals).unique().numel() == 4
    grad = torch.randn_like(pooled)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        pooled.backward(grad)
    events = prof.profiler.kineto_results.events()
    allocated = sum(e.nbytes() for e in events if e.name() == "[memory]" and e.nbytes() > 0)
    output_bytes = pooled.numel() * pooled.element_size()
    map_bytes = sum(f.numel() * f.element_size() for f in features)
    # The CPU kernel may accumulate each map's gradient in a channels-last buffer first: x2 maps.
    assert map_bytes < allocated <= 1.1 * (output_bytes + 2 * map_bytes), (allocated, output_bytes, map_bytes)


# ---------------------------------------------------------------- box loss
def test_sampling_free_box_loss_equals_hand_formula(monkeypatch):
    cfg = shapes_cfg(monkeypatch, "MODEL.SAMPLING_FREE.ROI.SAMPLER", False)
    evaluator = make_roi_box_loss_evaluator(cfg)
    target = boxlist([[10, 10, 50, 50]], (128, 128), [2])
    # IoU 1 (class 2), IoU 0.5625 (class 2), IoU 0 (background)
    proposals = boxlist([[10, 10, 50, 50], [10, 10, 50, 40], [80, 80, 120, 120]], (128, 128))
    kept = evaluator.subsample([proposals], [target])
    assert kept[0].get_field("labels").tolist() == [2, 2, 0]

    torch.manual_seed(0)
    logits = torch.randn(3, 5, requires_grad=True)
    regression = torch.randn(3, 20, requires_grad=True)
    cls_loss, box_loss = evaluator([logits], [regression])

    labels = torch.tensor([2, 2, 0])
    assert torch.allclose(cls_loss, F.cross_entropy(logits, labels, reduction="sum") / 2)
    coder = BoxCoder((10.0, 10.0, 5.0, 5.0))
    reg_targets = coder.encode(target.bbox.expand(2, 4), proposals.bbox[:2])
    expected_box = F.smooth_l1_loss(regression[:2, 8:12], reg_targets, beta=1.0, reduction="sum") / 3
    assert torch.allclose(box_loss, expected_box)  # divisor: 2 positives + 1 negative drawn


@pytest.mark.parametrize("use_sampler", [True, False])
def test_roi_sampler_switch(use_sampler, monkeypatch):
    cfg = shapes_cfg(monkeypatch, "MODEL.SAMPLING_FREE.ROI.SAMPLER", use_sampler,
                     "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", 512)
    evaluator = make_roi_box_loss_evaluator(cfg)
    torch.manual_seed(0)
    xy = torch.rand(2000, 2) * 100
    proposals = boxlist(torch.cat([xy, xy + 5 + torch.rand(2000, 2) * 40], dim=1), (160, 160))
    target = boxlist([[20, 20, 60, 60], [70, 30, 120, 90]], (160, 160), [1, 3])
    kept = evaluator.subsample([proposals], [target])[0]
    labels = kept.get_field("labels")
    if use_sampler:
        assert len(kept) == 512 and int((labels > 0).sum()) <= 128
    else:
        assert len(kept) == 2000  # BG threshold == FG threshold: nothing is ignored
        logits = torch.zeros(len(kept), 5, requires_grad=True)
        cls_loss, _ = evaluator([logits], [torch.zeros(len(kept), 20)])
        # uniform logits: CE is log(5) per proposal, summed and divided by the foreground count
        assert cls_loss.item() == pytest.approx(math.log(5) * 2000 / int((labels > 0).sum()), rel=1e-5)


# ---------------------------------------------------------------- post-processing
def test_post_processor_matches_a_per_class_torchvision_nms_loop():
    torch.manual_seed(0)
    num_classes, n = 4, 60
    xy = torch.rand(n, 2) * 80
    proposals = BoxList(torch.cat([xy, xy + 10 + torch.rand(n, 2) * 30], dim=1), (128, 128))
    logits = torch.randn(n, num_classes) * 2
    regression = torch.randn(n, num_classes * 4) * 0.5
    processor = PostProcessor(score_thresh=0.2, nms=0.5, detections_per_img=15)
    result = processor((logits, regression), [proposals])[0]

    coder = BoxCoder((10.0, 10.0, 5.0, 5.0))
    boxes = coder.decode(regression, proposals.bbox).view(n, num_classes, 4)
    boxes[..., 0::2] = boxes[..., 0::2].clamp(0, 128)
    boxes[..., 1::2] = boxes[..., 1::2].clamp(0, 128)
    scores = logits.softmax(dim=1)
    expected = []
    for label in range(1, num_classes):
        keep = scores[:, label] > 0.2
        class_boxes, class_scores = boxes[keep, label], scores[keep, label]
        for i in tv_nms(class_boxes, class_scores, 0.5).tolist():
            expected.append((class_scores[i].item(), label))
    expected = sorted(expected, reverse=True)[:15]
    got = list(zip(result.get_field("scores").tolist(), result.get_field("labels").tolist()))
    assert len(got) == len(expected)
    for (score, label), (ref_score, ref_label) in zip(got, expected):
        assert label == ref_label and score == pytest.approx(ref_score, abs=1e-6)


# ---------------------------------------------------------------- masks
def test_project_masks_on_boxes_crops_and_resizes():
    square = SegmentationMask([[[10, 10, 30, 10, 30, 30, 10, 30]]], (64, 64))
    exact = project_masks_on_boxes(square, boxlist([[10, 10, 30, 30]], (64, 64)), 14)
    assert exact.shape == (1, 14, 14) and exact.min().item() == 1.0
    wide = project_masks_on_boxes(square, boxlist([[0, 0, 40, 40]], (64, 64)), 28)
    # the square fills the middle half of the box in each direction: a quarter of the area
    assert wide.mean().item() == pytest.approx(0.25, abs=0.03)
    assert wide[0, 14, 14].item() == 1.0 and wide[0, 2, 2].item() == 0.0


def test_paste_mask_covers_its_box():
    pasted = paste_mask_in_image(torch.ones(28, 28), torch.tensor([10.0, 20.0, 50.0, 40.0]), 64, 64)
    assert pasted.shape == (64, 64) and pasted.dtype == torch.uint8
    rectangle = torch.zeros(64, 64, dtype=torch.bool)
    rectangle[20:40, 10:50] = True
    inter = (pasted.bool() & rectangle).sum().item()
    union = (pasted.bool() | rectangle).sum().item()
    assert inter / union > 0.9

    detections = boxlist([[10, 20, 50, 40], [0, 0, 8, 8]], (64, 48))
    pasted = Masker(threshold=0.5)(torch.ones(2, 1, 28, 28), detections)[0]
    assert pasted.shape == (2, 1, 48, 64)


# ---------------------------------------------------------------- Sampling-Free hooks
def test_roi_count_samples_uses_the_initial_proposals_and_sets_softmax_bias(monkeypatch):
    cfg = shapes_cfg(
        monkeypatch,
        "MODEL.RPN.USE_FPN", False, "MODEL.RPN.ANCHOR_STRIDE", (16,), "MODEL.RPN.ANCHOR_SIZES", (32,),
        "MODEL.RPN.ASPECT_RATIOS", (1.0,), "DATALOADER.SIZE_DIVISIBILITY", 0,
    )
    head = build_roi_box_head(cfg, 16)
    assert head.sampling_free_name == "roi" and head.sampling_free_settings.stage == "ROI"
    # An untrained RPN proposes its anchors (constant scores, no regression): all 64 of the 8x8
    # grid survive its NMS (neighbours overlap at IoU 1/3 < 0.7), clipped to the image. At IoU >= 0.5
    # only the one equal to the box is foreground, plus the ground-truth box appended: 63
    # background, 2 of class 3.
    target = boxlist([[8, 8, 40, 40]], (128, 128), [3])
    counts = head.count_samples([target], [(128, 128)])
    assert counts.dtype == torch.float64
    assert counts.tolist() == [63.0, 0.0, 0.0, 2.0, 0.0]
    info = head.set_bias_from_counts(counts)
    probabilities = torch.softmax(head.predictor.cls_score.bias.double(), dim=0)
    expected = torch.tensor([63.0, 0.5, 0.5, 2.0, 0.5], dtype=torch.float64)  # unseen classes: half a count
    assert torch.allclose(probabilities, expected / expected.sum(), atol=1e-6)
    assert info["pi"][0] == pytest.approx(63 / 66.5, rel=1e-6)
