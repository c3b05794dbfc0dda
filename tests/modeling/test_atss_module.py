"""ATSS and PAA modules: losses against independent formulas, a box without positives, the
optimal-bias counting and inference."""
import math

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import generalized_box_iou_loss, sigmoid_focal_loss

from maskrcnn_benchmark.config import cfg as default_cfg
from maskrcnn_benchmark.modeling.rpn.atss import build_atss
from maskrcnn_benchmark.modeling.rpn.paa import build_paa
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.image_list import ImageList

CHANNELS = 32
NUM_CLASSES = 4  # 3 foreground classes + background


def small_cfg(group, **sampling_free):
    cfg = default_cfg.clone()
    head = cfg.MODEL[group]
    head.NUM_CLASSES = NUM_CLASSES
    head.NUM_CONVS = 1
    head.ANCHOR_SIZES = (16, 32)
    head.ANCHOR_STRIDES = (8, 16)
    for key, value in sampling_free.items():
        cfg.MODEL.SAMPLING_FREE.ONE_STAGE[key] = value
    cfg.DATALOADER.SIZE_DIVISIBILITY = 16
    return cfg


def single_level_cfg(group):
    """One level of 20 px anchors at stride 10: a 50x50 image has anchors centred at 5..45."""
    cfg = small_cfg(group)
    cfg.MODEL[group].ANCHOR_SIZES = (20,)
    cfg.MODEL[group].ANCHOR_STRIDES = (10,)
    cfg.DATALOADER.SIZE_DIVISIBILITY = 0
    return cfg


def build(group, cfg):
    return (build_atss if group == "ATSS" else build_paa)(cfg, CHANNELS)


def batch(boxes_per_image, size=64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    images = ImageList(torch.zeros(len(boxes_per_image), 3, size, size), [(size, size)] * len(boxes_per_image))
    features = [torch.randn(len(boxes_per_image), CHANNELS, size // s, size // s, generator=generator) for s in (8, 16)]
    targets = []
    for boxes in boxes_per_image:
        target = BoxList(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), (size, size))
        target.add_field("labels", torch.arange(1, len(boxes) + 1) % (NUM_CLASSES - 1) + 1)
        targets.append(target)
    return images, features, targets


QUALITY_KEY = {"ATSS": "loss_centerness", "PAA": "loss_iou"}
BOXES = [[[8.0, 8.0, 40.0, 36.0], [30.0, 20.0, 60.0, 60.0]], [[4.0, 10.0, 28.0, 30.0]]]


@pytest.mark.parametrize("group", ["ATSS", "PAA"])
def test_training_losses_are_finite_and_reach_every_branch(group):
    module = build(group, small_cfg(group)).train()
    images, features, targets = batch(BOXES)
    _, losses = module(images, features, targets)
    assert set(losses) >= {"loss_cls", "loss_reg", QUALITY_KEY[group]}
    total = sum(v for k, v in losses.items() if k.startswith("loss"))
    assert torch.isfinite(total)
    assert all(losses[k] > 0 for k in ("loss_cls", "loss_reg", QUALITY_KEY[group]))
    total.backward()
    for name in ("cls_logits", "bbox_pred", "quality_pred"):
        grad = getattr(module.head, name).weight.grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name


def test_atss_box_between_anchor_centres_has_no_positive_yet_trains():
    # Single level 20 px anchors at centres 5..45: an 8x8 box at (30, 30) has no anchor centre
    # inside, so ATSS selects nothing; the batch still gives finite losses.
    cfg = single_level_cfg("ATSS")
    module = build("ATSS", cfg).train()
    images = ImageList(torch.zeros(1, 3, 50, 50), [(50, 50)])
    features = [torch.randn(1, CHANNELS, 5, 5)]
    target = BoxList(torch.tensor([[26.0, 26.0, 34.0, 34.0]]), (50, 50))
    target.add_field("labels", torch.tensor([2]))
    _, losses = module(images, features, [target])
    assert losses["loss_reg"].item() == 0.0
    assert torch.isfinite(losses["loss_cls"]) and losses["loss_cls"] > 0


@pytest.mark.parametrize("group", ["ATSS", "PAA"])
@pytest.mark.parametrize("kind", ["focal", "ce"])
def test_classification_loss_matches_independent_formula(group, kind):
    module = build(group, small_cfg(group, CLS_LOSS=kind)).train()
    images, features, targets = batch(BOXES)
    box_cls, box_regression, quality = module.head(features)
    anchors = module.positions_for_features(features)  # per level, shared by the images
    loss_cls, _, _ = module.loss_evaluator(box_cls, box_regression, quality, targets, anchors)

    # Rebuild labels through the public assignment, then apply torchvision / torch formulas.
    logits = torch.cat([c.permute(0, 2, 3, 1).reshape(2, -1, NUM_CLASSES - 1) for c in box_cls], 1)
    deltas = torch.cat([r.permute(0, 2, 3, 1).reshape(2, -1, 4) for r in box_regression], 1)
    labels = []
    for image, target in enumerate(targets):
        if group == "ATSS":
            image_labels, _ = module.loss_evaluator.assign(anchors, target)
        else:
            image_labels, _ = module.loss_evaluator.assign(
                anchors, target, logits[image].detach(), deltas[image].detach()
            )
        labels.append(image_labels)
    labels = torch.cat(labels)
    one_hot = F.one_hot(labels, NUM_CLASSES)[:, 1:].float()
    flat = logits.reshape(-1, NUM_CLASSES - 1)
    if kind == "focal":
        expected = sigmoid_focal_loss(flat, one_hot, alpha=0.25, gamma=2.0, reduction="sum")
    else:
        expected = F.binary_cross_entropy_with_logits(flat, one_hot, reduction="sum")
    num_pos = int((labels > 0).sum())
    assert num_pos > 0
    assert loss_cls.item() == pytest.approx(expected.item() / num_pos, rel=1e-4)


def test_atss_count_samples_by_hand_and_bias():
    cfg = single_level_cfg("ATSS")
    cfg.MODEL.BOX_CONVENTION = "continuous"  # the counts below are for exact, symmetric anchors
    module = build("ATSS", cfg)
    # 50x50 image: 5x5 anchors, 3 classes -> N = 75 per image. Box [12,12,38,38]: only the
    # centre anchor passes mean + std (see test_atss_selection); box [5,5,45,45]: all 9 candidates.
    first = BoxList(torch.tensor([[12.0, 12.0, 38.0, 38.0]]), (50, 50))
    second = BoxList(torch.tensor([[5.0, 5.0, 45.0, 45.0]]), (50, 50))
    for target in (first, second):
        target.add_field("labels", torch.tensor([1]))
    counts = module.count_samples([first, second], [(50, 50), (50, 50)])
    assert counts.dtype == torch.float64
    assert counts.tolist() == [150.0, 10.0]

    info = module.set_bias_from_counts(counts)
    expected_bias = -math.log(150.0 / 10.0 - 1.0)
    assert info["pi"] == pytest.approx(10 / 150)
    assert info["bias"] == pytest.approx(expected_bias)
    assert torch.allclose(module.head.cls_logits.bias, torch.full((3,), expected_bias))


def test_paa_count_samples_is_the_assignment_of_the_initial_constant_predictions():
    cfg = single_level_cfg("PAA")
    cfg.MODEL.BOX_CONVENTION = "continuous"  # the values below are for exact, symmetric anchors
    module = build("PAA", cfg)
    # Box [12,12,38,38]: 9 anchors reach IoU 0.1. With every logit equal and zero regressions each
    # prediction is its anchor and the candidates' scores differ only by 1 - GIoU(anchor, box):
    # 0.408 (centre), 0.730 (4 edges), 0.981 (4 corners). The mixture (means 0.69 / 0.88, variances
    # 0.039 / 0.015 after EM) puts the edges with the corners: the centre alone is positive, where
    # counting the candidates would give 9.
    target = BoxList(torch.tensor([[12.0, 12.0, 38.0, 38.0]]), (50, 50))
    target.add_field("labels", torch.tensor([3]))
    anchors = module.positions_for_image_size((50, 50))[0]
    ring = [6, 7, 8, 11, 12, 13, 16, 17, 18]
    giou_loss = generalized_box_iou_loss(anchors[ring], target.bbox.expand(9, 4), reduction="none")
    assert giou_loss.tolist() == pytest.approx([0.981, 0.730, 0.981, 0.730, 0.408, 0.730, 0.981, 0.730, 0.981], abs=1e-3)
    counts = module.count_samples([target], [(50, 50)])
    assert counts.tolist() == [75.0, 1.0]
    labels = module.labels_for_counting(target, (50, 50))
    assert (labels > 0).nonzero().flatten().tolist() == [12]


def test_count_samples_follows_padding_and_strides():
    module = build("ATSS", small_cfg("ATSS"))
    # 50x70 padded to 64x80 (SIZE_DIVISIBILITY 16): 8x10 cells at stride 8, 4x5 at stride 16.
    target = BoxList(torch.zeros(0, 4), (70, 50))
    target.add_field("labels", torch.zeros(0, dtype=torch.long))
    counts = module.count_samples([target], [(50, 70)])
    assert counts.tolist() == [(80 + 20) * 3, 0.0]


@pytest.mark.parametrize("group", ["ATSS", "PAA"])
def test_inference_score_is_sqrt_of_class_and_quality(group):
    module = build(group, small_cfg(group)).eval()
    images, features, _ = batch([[], []])
    with torch.no_grad():
        module.head.cls_logits.bias.fill_(-2.0)  # p ~ 0.12 > INFERENCE_TH
        module.head.quality_pred.bias.fill_(-1.0)
        (results, _) = module(images, features)
        box_cls, _, quality = module.head(features)
    assert len(results) == 2
    # Highest class probability of image 0, over all levels and classes, and its quality.
    probs = torch.cat([c[0].permute(1, 2, 0).reshape(-1, NUM_CLASSES - 1) for c in box_cls]).sigmoid()
    qual = torch.cat([q[0].permute(1, 2, 0).reshape(-1) for q in quality]).sigmoid()
    expected = torch.sqrt(probs * qual[:, None])
    assert results[0].get_field("scores").max().item() == pytest.approx(expected.max().item(), rel=1e-5)
    assert results[0].bbox.shape[1] == 4 and (results[0].get_field("labels") >= 1).all()
