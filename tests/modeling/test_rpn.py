"""RPN building blocks: Matcher, BoxCoder, sampler, anchors, RPN loss (sampler switch), proposal
selection and the Sampling-Free counting / bias hooks. References: torchvision's detection
utilities and hand-computed values."""
import math

import pytest
import torch
from torch.nn import functional as F
from torchvision.models.detection import _utils as tv_utils
from torchvision.ops import box_iou

from maskrcnn_benchmark.config import cfg as global_cfg
from maskrcnn_benchmark.modeling.balanced_positive_negative_sampler import BalancedPositiveNegativeSampler
from maskrcnn_benchmark.modeling.box_coder import BoxCoder
from maskrcnn_benchmark.modeling.matcher import Matcher
from maskrcnn_benchmark.modeling.rpn.anchor_generator import (
    AnchorGenerator,
    feature_grid_sizes,
    generate_anchors,
    make_anchor_generator,
    make_anchor_generator_retinanet,
)
from maskrcnn_benchmark.modeling.rpn.inference import RPNPostProcessor
from maskrcnn_benchmark.modeling.rpn.rpn import RPNModule, build_rpn
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.box_convention import CONTINUOUS, MASKRCNN_BENCHMARK
from maskrcnn_benchmark.structures.image_list import ImageList


def boxlist(boxes, size, labels=None):
    result = BoxList(torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4), size)
    if labels is not None:
        result.add_field("labels", torch.as_tensor(labels, dtype=torch.int64))
    return result


# ---------------------------------------------------------------- Matcher
def test_matcher_thresholds_and_low_quality_rule():
    iou = torch.tensor([[0.9, 0.5, 0.2, 0.1, 0.0, 0.40],
                        [0.1, 0.6, 0.25, 0.65, 0.0, 0.65]])
    plain = Matcher(0.7, 0.3, allow_low_quality_matches=False)(iou.clone())
    assert plain.tolist() == [0, -2, -1, -2, -1, -2]
    # gt 1 reaches at most 0.65, at predictions 3 and 5 (a tie): both get it back.
    low_quality = Matcher(0.7, 0.3, allow_low_quality_matches=True)(iou.clone())
    assert low_quality.tolist() == [0, -2, -1, 1, -1, 1]


def test_matcher_agrees_with_torchvision_on_random_ious():
    torch.manual_seed(0)
    for allow in (False, True):
        for _ in range(20):
            iou = torch.rand(4, 50) * (torch.rand(4, 50) > 0.3)
            ours = Matcher(0.7, 0.3, allow)(iou.clone())
            reference = tv_utils.Matcher(0.7, 0.3, allow)(iou.clone())
            assert torch.equal(ours, reference)


def test_matcher_without_ground_truth_gives_background_and_bad_thresholds_raise():
    assert Matcher(0.7, 0.3)(torch.zeros(0, 7)).tolist() == [-1] * 7
    with pytest.raises(ValueError, match="low_threshold"):
        Matcher(0.3, 0.7)


# ---------------------------------------------------------------- BoxCoder
def test_box_coder_hand_computed_encode():
    coder = BoxCoder(weights=(1.0, 1.0, 1.0, 1.0), convention=CONTINUOUS)
    codes = coder.encode(torch.tensor([[5.0, 5.0, 15.0, 25.0]]), torch.tensor([[0.0, 0.0, 10.0, 10.0]]))
    # centres (5, 5) -> (10, 15), sizes 10 x 10 -> 10 x 20
    assert torch.allclose(codes, torch.tensor([[0.5, 1.0, 0.0, math.log(2.0)]]))
    # maskrcnn-benchmark (the default): centres (5.5, 5.5) -> (10.5, 15.5), sizes 11 x 11 -> 11 x 21
    codes = BoxCoder(weights=(1.0, 1.0, 1.0, 1.0)).encode(
        torch.tensor([[5.0, 5.0, 15.0, 25.0]]), torch.tensor([[0.0, 0.0, 10.0, 10.0]]))
    assert torch.allclose(codes, torch.tensor([[5 / 11, 10 / 11, 0.0, math.log(21 / 11)]]))


@pytest.mark.parametrize("convention", [CONTINUOUS, MASKRCNN_BENCHMARK])
def test_box_coder_matches_torchvision_and_round_trips(convention):
    # torchvision's coder is continuous; inclusive corners are the continuous box one pixel wider
    torch.manual_seed(0)
    xy = torch.rand(100, 2) * 200
    proposals = torch.cat([xy, xy + 1 + torch.rand(100, 2) * 100], dim=1)
    xy = torch.rand(100, 2) * 200
    targets = torch.cat([xy, xy + 1 + torch.rand(100, 2) * 100], dim=1)
    ours = BoxCoder(weights=(10.0, 10.0, 5.0, 5.0), convention=convention)
    reference = tv_utils.BoxCoder(weights=(10.0, 10.0, 5.0, 5.0))
    codes = ours.encode(targets, proposals)
    continuous = convention.to_continuous
    assert torch.allclose(codes, reference.encode_single(continuous(targets), continuous(proposals)), atol=1e-5)
    assert torch.allclose(continuous(ours.decode(codes, proposals)),
                          reference.decode_single(codes, continuous(proposals)), atol=1e-3)
    assert torch.allclose(ours.decode(codes, proposals), targets, atol=1e-3)
    # several boxes per row (one per class) decode independently
    two_per_row = ours.decode(torch.cat([codes, torch.zeros_like(codes)], dim=1), proposals)
    assert torch.allclose(two_per_row[:, :4], targets, atol=1e-3)
    assert torch.allclose(two_per_row[:, 4:], proposals, atol=1e-3)


def test_box_coder_clips_huge_size_deltas():
    for convention in (CONTINUOUS, MASKRCNN_BENCHMARK):
        coder = BoxCoder(weights=(1.0, 1.0, 1.0, 1.0), convention=convention)
        reference = torch.tensor([[0.0, 0.0, 16.0, 16.0]])
        decoded = coder.decode(torch.tensor([[0.0, 0.0, 100.0, 100.0]]), reference)
        # exp(log(1000 / 16)) times the reference width (16, or 17 with inclusive corners)
        assert torch.allclose(convention.widths(decoded), convention.widths(reference) * 1000.0 / 16)


# ---------------------------------------------------------------- sampler
def test_sampler_caps_positives_and_fills_with_negatives():
    torch.manual_seed(0)
    sampler = BalancedPositiveNegativeSampler(256, 0.5)
    few_pos = torch.cat([torch.ones(10), torch.zeros(1000), -torch.ones(50)])
    many_pos = torch.cat([torch.ones(500), torch.zeros(1000)])
    (pos_a, pos_b), (neg_a, neg_b) = sampler([few_pos, many_pos])
    assert int(pos_a.sum()) == 10 and int(neg_a.sum()) == 246
    assert int(pos_b.sum()) == 128 and int(neg_b.sum()) == 128
    assert bool((few_pos[pos_a.bool()] == 1).all()) and bool((few_pos[neg_a.bool()] == 0).all())
    assert sampler.sample_counts(10, 3) == (10, 3)


# ---------------------------------------------------------------- anchors
def test_generate_anchors_sizes_ratios_and_centre():
    anchors = generate_anchors(16, (32, 64), (0.5, 1.0, 2.0), CONTINUOUS)
    assert anchors.shape == (6, 4)
    widths, heights = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    assert torch.allclose(widths * heights, torch.tensor([32.0 ** 2, 64.0 ** 2] * 3))
    assert torch.allclose(heights / widths, torch.tensor([0.5, 0.5, 1.0, 1.0, 2.0, 2.0]))
    assert torch.allclose((anchors[:, :2] + anchors[:, 2:]) / 2, torch.full((6, 2), 8.0))


def test_anchor_counts_per_level_and_visibility():
    generator = AnchorGenerator(((32,), (64,), (128,), (256,), (512,)), (0.5, 1.0, 2.0), (4, 8, 16, 32, 64), 0)
    images = ImageList(torch.zeros(1, 3, 128, 96), [(128, 96)])
    features = [torch.zeros(1, 8, 128 // s, 96 // s) for s in (4, 8, 16, 32, 64)]
    levels = generator(images, features)[0]
    assert [len(a) for a in levels] == [32 * 24 * 3, 16 * 12 * 3, 8 * 6 * 3, 4 * 3 * 3, 2 * 1 * 3]
    for anchors in levels:
        box = anchors.bbox
        inside = (box[:, 0] >= 0) & (box[:, 1] >= 0) & (box[:, 2] < 96) & (box[:, 3] < 128)
        assert torch.equal(anchors.get_field("visibility"), inside)
    assert not bool(levels[-1].get_field("visibility").any())  # 512-pixel anchors never fit

    keep_all = AnchorGenerator(((32,),), (1.0,), (16,), straddle_thresh=-1)
    assert bool(keep_all(images, [torch.zeros(1, 8, 8, 6)])[0][0].get_field("visibility").all())


def test_c4_and_retinanet_anchor_layouts():
    cfg = global_cfg.clone()
    cfg.MODEL.BOX_CONVENTION = "continuous"  # exact sizes (maskrcnn-benchmark's: test_box_convention.py)
    c4 = make_anchor_generator(cfg)  # default: one stride 16, five sizes, three ratios
    assert c4.num_anchors_per_location() == [15]
    cfg.MODEL.RETINANET.SCALES_PER_OCTAVE = 3
    retina = make_anchor_generator_retinanet(cfg)
    assert retina.num_anchors_per_location() == [9] * 5
    sizes = torch.sqrt(torch.stack([a[:, 2] - a[:, 0] for a in retina.cell_anchors]) *
                       torch.stack([a[:, 3] - a[:, 1] for a in retina.cell_anchors]))
    assert torch.allclose(sizes[0, :3], torch.tensor([32.0, 32 * 2 ** (1 / 3), 32 * 2 ** (2 / 3)]))
    cfg.MODEL.RPN.USE_FPN = True
    with pytest.raises(ValueError, match="ANCHOR_STRIDE"):
        make_anchor_generator(cfg)


def test_feature_grid_sizes_match_a_real_backbone(monkeypatch):
    from maskrcnn_benchmark.modeling.backbone import build_backbone

    cfg = small_cfg(monkeypatch)
    backbone = build_backbone(cfg).eval()
    with torch.no_grad():
        maps = backbone(torch.zeros(1, 3, 100, 75))
    assert [tuple(m.shape[-2:]) for m in maps] == feature_grid_sizes((100, 75), (4, 8, 16, 32, 64))


# ---------------------------------------------------------------- RPN module
def small_cfg(monkeypatch, **overrides):
    cfg = global_cfg.clone()
    cfg.merge_from_file("configs/shapes/faster_rcnn_R_18_FPN_shapes.yaml")
    for key, value in overrides.items():
        cfg.merge_from_list([key, value])
    for key, value in cfg.MODEL.GROUP_NORM.items():
        monkeypatch.setitem(global_cfg.MODEL.GROUP_NORM, key, value)
    return cfg


def rpn_inputs(cfg, num_images=2, size=(128, 128)):
    torch.manual_seed(0)
    images = ImageList(torch.zeros(num_images, 3, *size), [size] * num_images)
    strides = cfg.MODEL.RPN.ANCHOR_STRIDE
    features = [torch.randn(num_images, 16, *grid) for grid in feature_grid_sizes(size, strides)]
    targets = [
        boxlist([[10, 12, 50, 60], [64, 64, 120, 110]], (size[1], size[0]), [1, 2]),
        boxlist([[30, 20, 90, 100]], (size[1], size[0]), [3]),
    ][:num_images]
    return images, features, targets


def reference_valid_anchor_count(module, images, features, targets):
    """Anchors with label >= 0, recomputed with torchvision's IoU (of the continuous boxes) and the
    0.7 / 0.3 rule."""
    continuous = module.anchor_generator.convention.to_continuous
    total_valid, total_positive = 0, 0
    for anchors, target in zip(module.anchor_generator(images, features), targets):
        boxes = torch.cat([a.bbox for a in anchors])
        visible = torch.cat([a.get_field("visibility") for a in anchors])
        iou = box_iou(continuous(target.bbox), continuous(boxes))
        best, _ = iou.max(dim=0)
        positive = best >= 0.7
        positive |= (iou == iou.max(dim=1, keepdim=True).values).any(dim=0)
        negative = (best < 0.3) & ~positive
        total_valid += int(((positive | negative) & visible).sum())
        total_positive += int((positive & visible).sum())
    return total_valid, total_positive


@pytest.mark.parametrize("use_sampler", [True, False])
def test_sampler_switch_changes_which_anchors_are_trained(use_sampler, monkeypatch):
    cfg = small_cfg(monkeypatch, **{"MODEL.SAMPLING_FREE.RPN.SAMPLER": use_sampler})
    module = RPNModule(cfg, 16).train()
    images, features, targets = rpn_inputs(cfg)
    objectness, regression = module.head(features)
    for o in objectness:
        o.retain_grad()
    anchors = module.anchor_generator(images, features)
    loss_objectness, _ = module.loss_evaluator(anchors, objectness, regression, targets)
    loss_objectness.backward()
    trained = sum(int((o.grad != 0).sum()) for o in objectness)

    valid, positive = reference_valid_anchor_count(module, images, features, targets)
    if use_sampler:
        assert trained == 256 * len(targets)
    else:
        assert trained == valid
        assert valid > 10 * 256
        # sum of BCE over all valid anchors divided by the positives (paper eq. 13)
        logits = torch.cat([o.detach().permute(0, 2, 3, 1).reshape(len(targets), -1) for o in objectness], dim=1)
        assert loss_objectness.item() > 0
        bound = F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits), reduction="sum") / positive
        assert loss_objectness.item() <= bound.item() * 1.05


def test_sampling_free_rpn_loss_equals_hand_formula(monkeypatch):
    cfg = small_cfg(monkeypatch, **{"MODEL.SAMPLING_FREE.RPN.SAMPLER": False})
    module = RPNModule(cfg, 16).train()
    images, features, targets = rpn_inputs(cfg, num_images=1)
    objectness, regression = module.head(features)
    anchors = module.anchor_generator(images, features)
    loss_objectness, loss_box = module.loss_evaluator(anchors, objectness, regression, targets)

    from maskrcnn_benchmark.structures.boxlist_ops import cat_boxlist

    joined = [cat_boxlist(a) for a in anchors]
    labels, reg_targets = module.loss_evaluator.prepare_targets(joined, targets)
    labels, reg_targets = labels[0], reg_targets[0]
    logits = torch.cat([o.permute(0, 2, 3, 1).reshape(-1) for o in objectness])
    deltas = torch.cat([r.view(1, -1, 4, *r.shape[-2:]).permute(0, 3, 4, 1, 2).reshape(-1, 4) for r in regression])
    valid, positive = labels >= 0, labels == 1
    expected_cls = F.binary_cross_entropy_with_logits(logits[valid], labels[valid], reduction="sum") / positive.sum()
    num_pos = min(int(positive.sum()), 128)
    divisor = num_pos + min(256 - num_pos, int((labels == 0).sum()))
    expected_box = F.smooth_l1_loss(deltas[positive], reg_targets[positive], beta=1 / 9, reduction="sum") / divisor
    assert torch.allclose(loss_objectness, expected_cls, rtol=1e-5)
    assert torch.allclose(loss_box, expected_box, rtol=1e-5)


def test_image_without_objects_gives_finite_rpn_losses(monkeypatch):
    for use_sampler in (True, False):
        cfg = small_cfg(monkeypatch, **{"MODEL.SAMPLING_FREE.RPN.SAMPLER": use_sampler})
        module = RPNModule(cfg, 16).train()
        images, features, _ = rpn_inputs(cfg, num_images=1)
        empty = boxlist(torch.zeros(0, 4), (128, 128), torch.zeros(0))
        _, losses = module(images, features, [empty])
        assert torch.isfinite(losses["loss_objectness"]) and losses["loss_objectness"] > 0
        assert losses["loss_rpn_box_reg"].item() == 0.0


def test_proposals_in_training_include_ground_truth_and_respect_top_n(monkeypatch):
    cfg = small_cfg(monkeypatch, **{"MODEL.RPN.FPN_POST_NMS_TOP_N_TRAIN": 100})
    module = RPNModule(cfg, 16).train()
    images, features, targets = rpn_inputs(cfg)
    proposals, _ = module(images, features, targets)
    # per batch: 100 proposals shared by the two images, then each image's ground truth appended
    assert sum(len(p) for p in proposals) == 100 + sum(len(t) for t in targets)
    for proposal, target in zip(proposals, targets):
        assert torch.equal(proposal.bbox[-len(target):], target.bbox)
    module.eval()
    proposals, losses = module(images, features)
    assert losses == {} and all(len(p) <= cfg.MODEL.RPN.FPN_POST_NMS_TOP_N_TEST for p in proposals)


def test_post_processor_per_image_selection_and_nms():
    anchors = [[boxlist([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], (100, 100))] for _ in range(2)]
    objectness = torch.tensor([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0]]).view(2, 3, 1, 1).permute(0, 1, 2, 3)
    # A=3 anchors at a 1x1 location; zero regression keeps the anchors as proposals
    selector = RPNPostProcessor(10, 10, 0.5, 0, fpn_post_nms_top_n=10).eval()
    result = selector(anchors, [objectness], [torch.zeros(2, 12, 1, 1)])
    # the two overlapping anchors (IoU 9/11) collapse to the higher-scoring one
    assert result[0].bbox.tolist() == [[0, 0, 10, 10], [50, 50, 60, 60]]
    assert result[1].bbox.tolist() == [[50, 50, 60, 60], [1, 0, 11, 10]]


# ---------------------------------------------------------------- Sampling-Free hooks
def test_rpn_count_samples_and_optimal_bias_on_a_hand_built_case(monkeypatch):
    # One level, stride 16, one 32x32 anchor per location, 128x128 image: an 8x8 grid whose
    # anchors are [16i - 8, 16i + 24]; with straddle 0 only i, j in 1..6 are inside (36 anchors).
    cfg = small_cfg(monkeypatch, **{
        "MODEL.RPN.USE_FPN": False, "MODEL.RPN.ANCHOR_STRIDE": (16,), "MODEL.RPN.ANCHOR_SIZES": (32,),
        "MODEL.RPN.ASPECT_RATIOS": (1.0,), "DATALOADER.SIZE_DIVISIBILITY": 0,
    })
    module = build_rpn(cfg, 16)
    assert module.sampling_free_name == "rpn" and module.sampling_free_settings.stage == "RPN"
    # The box equals anchor (1, 1): positive. Anchors (1, 2) and (2, 1) have IoU 1/3 (ignored),
    # every other visible anchor IoU < 0.3 (negative): N = 36 - 2, N^f = 1.
    target = boxlist([[8, 8, 40, 40]], (128, 128), [1])
    counts = module.count_samples([target], [(128, 128)])
    assert counts.dtype == torch.float64
    assert counts.tolist() == [34.0, 1.0]
    info = module.set_bias_from_counts(counts)
    assert info["pi"] == pytest.approx(1 / 34)
    assert info["bias"] == pytest.approx(-math.log(34 / 1 - 1))
    assert torch.allclose(module.head.cls_logits.bias, torch.full((1,), -math.log(33.0)))
    with pytest.raises(ValueError):
        module.set_bias_from_counts(torch.tensor([10.0, 0.0]))


def test_guided_rpn_adds_log_delta_and_trains_delta(monkeypatch):
    cfg = small_cfg(monkeypatch, **{"MODEL.SAMPLING_FREE.RPN.GUIDED": "guided",
                                    "MODEL.SAMPLING_FREE.RPN.SAMPLER": False})
    module = RPNModule(cfg, 16).train()
    images, features, targets = rpn_inputs(cfg)
    _, losses = module(images, features, targets)
    assert "loss_rpn_log_delta" in losses
    # at start g * delta * L_cls equals L_loc (delta = 1)
    assert torch.allclose(losses["loss_objectness"], losses["loss_rpn_box_reg"], rtol=1e-5)
    sum(v for k, v in losses.items() if k.startswith("loss")).backward()
    assert module.loss_scaler.delta.grad is not None
