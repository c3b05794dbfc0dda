"""PAA's loss evaluator as the paper (Kim & Lee, 2020) and its public code define it, on hand cases:
candidates ranked by the loss of the current prediction (not by IoU), that loss adding the box term
unweighted, and the box loss weighted by each prediction's IoU over the sum of those IoUs."""
import pytest
import torch
from torchvision.ops import box_iou, generalized_box_iou_loss, sigmoid_focal_loss

from maskrcnn_benchmark.config import cfg as default_cfg
from maskrcnn_benchmark.modeling.dense_heads.layout import flatten_levels
from maskrcnn_benchmark.modeling.rpn.paa import build_paa
from maskrcnn_benchmark.modeling.rpn.paa.loss import iou_weighted_box_loss
from maskrcnn_benchmark.structures.bounding_box import BoxList

from helpers import square_grid

CHANNELS = 32
NUM_CLASSES = 3  # foreground columns


def paa(topk=9, reg_loss_weight=1.3):
    """PAA on one level of 20 px anchors at stride 10 (a 50x50 image: centres 5..45)."""
    cfg = default_cfg.clone()
    cfg.MODEL.BOX_CONVENTION = "continuous"  # exact anchors, for the hand-computed geometry below
    cfg.MODEL.PAA.NUM_CLASSES = NUM_CLASSES + 1
    cfg.MODEL.PAA.NUM_CONVS = 1
    cfg.MODEL.PAA.ANCHOR_SIZES = (20,)
    cfg.MODEL.PAA.ANCHOR_STRIDES = (10,)
    cfg.MODEL.PAA.SCALES_PER_OCTAVE = 1
    cfg.MODEL.PAA.ASPECT_RATIOS = (1.0,)
    cfg.MODEL.PAA.TOPK = topk
    cfg.MODEL.PAA.REG_LOSS_WEIGHT = reg_loss_weight
    return build_paa(cfg, CHANNELS)


def box(coords, label=2, size=(50, 50)):
    target = BoxList(torch.tensor([coords], dtype=torch.float32), size)
    target.add_field("labels", torch.tensor([label]))
    return target


def test_the_candidate_is_the_lowest_loss_anchor_not_the_highest_iou_one():
    module = paa(topk=1)
    anchors = square_grid(5, 10, 20)
    assert torch.allclose(module.positions_for_image_size((50, 50))[0], anchors)
    target = box([12.0, 12.0, 38.0, 38.0])
    # The centre anchor 12 overlaps the box most (IoU 0.59); corner anchor 6 (IoU 0.19) predicts
    # the box exactly, so its box loss is 0 and its score the lowest: with top-1, it is the one.
    regression = torch.zeros(25, 4)
    regression[6] = module.box_coder.encode(target.bbox, anchors[6:7])[0]
    labels, matched = module.assign([anchors], target, torch.zeros(25, NUM_CLASSES), regression)
    assert (labels > 0).nonzero().flatten().tolist() == [6]
    assert labels[6].item() == 2 and torch.allclose(matched[6], target.bbox[0])
    # Without that prediction the centre anchor is the top-1 candidate.
    labels, _ = module.assign([anchors], target)
    assert (labels > 0).nonzero().flatten().tolist() == [12]


def test_the_candidate_score_adds_the_box_loss_unweighted():
    module = paa(reg_loss_weight=10.0)
    generator = torch.Generator().manual_seed(0)
    anchors = square_grid(3, 10, 20)
    logits = torch.randn(9, NUM_CLASSES, generator=generator)
    regression = torch.randn(9, 4, generator=generator) * 0.5
    gt = torch.tensor([[8.0, 6.0, 30.0, 28.0]]).expand(9, 4)
    labels = torch.full((9,), 3)
    scores = module.loss_evaluator.candidate_scores(logits, regression, anchors, gt, labels)
    one_hot = torch.nn.functional.one_hot(labels, NUM_CLASSES + 1)[:, 1:].float()
    focal = sigmoid_focal_loss(logits, one_hot, alpha=0.25, gamma=2.0, reduction="none").sum(dim=1)
    giou = generalized_box_iou_loss(module.box_coder.decode(regression, anchors), gt, reduction="none")
    assert torch.allclose(scores, focal + giou, atol=1e-5)


def test_iou_weighted_box_loss_by_hand():
    # Two positives: GIoU losses 0.2 and 0.8, prediction IoUs 0.9 and 0.1:
    # (0.2 * 0.9 + 0.8 * 0.1) / (0.9 + 0.1) = 0.26 (an unweighted mean would give 0.5).
    loss = iou_weighted_box_loss(torch.tensor([0.2, 0.8]), torch.tensor([0.9, 0.1]), num_pos=torch.tensor(2.0))
    assert loss.item() == pytest.approx(0.26)
    # All IoUs 0 (predictions off their boxes): unweighted, over the positive count.
    loss = iou_weighted_box_loss(torch.tensor([0.2, 0.8]), torch.zeros(2), num_pos=torch.tensor(2.0))
    assert loss.item() == pytest.approx(0.5)


def test_training_box_loss_is_the_iou_weighted_giou_over_the_iou_sum():
    module = paa(reg_loss_weight=1.3).train()
    generator = torch.Generator().manual_seed(1)
    features = [torch.randn(1, CHANNELS, 5, 5, generator=generator)]
    box_cls, box_regression, quality = module.head(features)
    anchors = module.positions_for_features(features)
    target = box([6.0, 8.0, 40.0, 30.0])
    _, loss_reg, loss_iou = module.loss_evaluator(box_cls, box_regression, quality, [target], anchors)

    logits = flatten_levels(box_cls, NUM_CLASSES)[0]
    regression = flatten_levels(box_regression, 4)[0]
    labels, _ = module.assign(anchors, target, logits.detach(), regression.detach())
    positive = labels > 0
    assert positive.sum() >= 2
    pred = module.box_coder.decode(regression[positive], anchors[0][positive])
    gt = target.bbox.expand_as(pred)
    ious = box_iou(pred, target.bbox)[:, 0]
    giou = generalized_box_iou_loss(pred, gt, reduction="none")
    assert loss_reg.item() == pytest.approx(((giou * ious).sum() / ious.sum() * 1.3).item(), rel=1e-4)
    iou_logits = flatten_levels(quality, 1).reshape(-1)[positive]
    bce = torch.nn.functional.binary_cross_entropy_with_logits(iou_logits, ious, reduction="sum")
    assert loss_iou.item() == pytest.approx((bce / positive.sum() * 0.5).item(), rel=1e-4)
