"""RetinaNet: anchors per level, anchor assignment, focal / CE / box losses against direct formulas,
inference and the optimal-bias counting (guided scaling and batches without boxes, for every dense
head: tests/modeling/test_dense_head_invariants.py)."""
import glob
import math
import os

import pytest
import torch
import torchvision
from torchvision.ops import batched_nms, box_iou, sigmoid_focal_loss

from maskrcnn_benchmark.config import cfg as default_cfg
from maskrcnn_benchmark.modeling.backbone import build_backbone
from maskrcnn_benchmark.modeling.rpn.fcos.fcos import build_fcos
from maskrcnn_benchmark.modeling.rpn.retinanet.inference import RetinaNetPostProcessor
from maskrcnn_benchmark.modeling.rpn.retinanet.loss import make_retinanet_loss_evaluator
from maskrcnn_benchmark.modeling.rpn.retinanet.retinanet import build_retinanet
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.image_list import ImageList

from helpers import fpn_features, target_boxlist

NUM_CLASSES = 4  # foreground classes
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def small_cfg(cls_loss="focal", guided="none"):
    cfg = default_cfg.clone()
    cfg.MODEL.RETINANET_ON = True
    cfg.MODEL.RETINANET.NUM_CLASSES = NUM_CLASSES + 1
    cfg.MODEL.RETINANET.NUM_CONVS = 1
    cfg.MODEL.SAMPLING_FREE.ONE_STAGE.CLS_LOSS = cls_loss
    cfg.MODEL.SAMPLING_FREE.ONE_STAGE.GUIDED = guided
    cfg.DATALOADER.SIZE_DIVISIBILITY = 32
    return cfg


# Hand-built anchors and one-level predictions (A = 1 anchor per location, 7 locations)
HAND_ANCHORS = [
    [0, 0, 10, 10],      # IoU 1 with box 0                 -> class 3
    [0, 0, 20, 20],      # IoU 100/400 = 0.25               -> background
    [5, 5, 15, 15],      # IoU 25/175 = 0.14                -> background
    [100, 100, 110, 110],  # no overlap                     -> background
    [0, 0, 10, 14],      # IoU 100/140 = 0.71               -> class 3
    [0, 0, 10, 22],      # IoU 100/220 = 0.45 (0.4..0.5)    -> ignored
    [200, 200, 220, 220],  # IoU 0.25 with box 1, its best  -> class 2 (low-quality match)
]
HAND_BOXES = [[0, 0, 10, 10], [200, 200, 240, 240]]
HAND_LABELS = [3, 2]
EXPECTED_LABELS = [3, 0, 0, 0, 3, -1, 2]


def hand_anchor_boxlist():
    return BoxList(torch.tensor(HAND_ANCHORS, dtype=torch.float32), (300, 300), mode="xyxy")


def test_anchor_counts_per_level_and_head_shapes():
    cfg = small_cfg()
    module = build_retinanet(cfg, in_channels=8).eval()
    # 100 x 150 pads to 128 x 160: levels of 16x20, 8x10, 4x5, 2x3, 1x2 cells, 9 anchors each
    expected = [9 * 16 * 20, 9 * 8 * 10, 9 * 4 * 5, 9 * 2 * 3, 9 * 1 * 2]
    features = fpn_features(128, 160, channels=8)
    images = ImageList(torch.zeros(1, 3, 128, 160), [(100, 150)])
    anchors = module.anchor_generator(images, features)
    assert [len(a) for a in anchors[0]] == expected
    assert len(torch.cat(module.positions_for_image_size((100, 150)))) == sum(expected)

    logits, regression = module.head(features)
    for level, (cls, reg) in enumerate(zip(logits, regression)):
        assert cls.shape == (1, 9 * NUM_CLASSES) + features[level].shape[-2:]
        assert reg.shape == (1, 9 * 4) + features[level].shape[-2:]
    # octave scales x ratios: P3 anchors have areas 32^2 * {1, 2^(2/3), 2^(4/3)} (up to the rounding
    # of widths and heights to whole pixels at the stride: ratio 2 is 6 x 12 = 72 pixels for 64), each
    # with the three aspect ratios
    areas = anchors[0][0].area()[:9]
    expected_areas = torch.tensor([32.0 ** 2 * 2 ** (2 * k / 3) for k in range(3)])
    nearest = (areas[:, None] / expected_areas[None, :] - 1).abs().min(dim=1)
    assert (nearest.values < 0.13).all()
    assert sorted(nearest.indices.tolist()) == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_assignment_on_hand_built_anchors():
    evaluator = make_retinanet_loss_evaluator(small_cfg(), box_coder=build_retinanet(small_cfg(), 8).box_coder)
    labels, regression = evaluator.prepare_targets(
        [hand_anchor_boxlist()], [target_boxlist(HAND_BOXES, HAND_LABELS, (300, 300))]
    )
    assert labels[0].tolist() == EXPECTED_LABELS
    # the regression target of the anchor that equals its box is zero
    assert torch.allclose(regression[0][0], torch.zeros(4), atol=1e-6)


def test_image_without_boxes_is_all_background():
    evaluator = make_retinanet_loss_evaluator(small_cfg(), box_coder=build_retinanet(small_cfg(), 8).box_coder)
    labels, regression = evaluator.prepare_targets([hand_anchor_boxlist()], [target_boxlist([], [], (300, 300))])
    assert labels[0].tolist() == [0] * len(HAND_ANCHORS)
    assert torch.isfinite(regression[0]).all()


def hand_encode(gt, anchor, weights=(10.0, 10.0, 5.0, 5.0), offset=0):
    """Box deltas written out from the definition (centre offsets / size, log size ratios); widths
    are ``x2 - x1 + offset`` (1 with maskrcnn-benchmark's inclusive corners)."""
    aw, ah = anchor[2] - anchor[0] + offset, anchor[3] - anchor[1] + offset
    gw, gh = gt[2] - gt[0] + offset, gt[3] - gt[1] + offset
    ax, ay = anchor[0] + aw / 2, anchor[1] + ah / 2
    gx, gy = gt[0] + gw / 2, gt[1] + gh / 2
    return [weights[0] * (gx - ax) / aw, weights[1] * (gy - ay) / ah,
            weights[2] * math.log(gw / aw), weights[3] * math.log(gh / ah)]


def hand_smooth_l1(diff, beta):
    diff = abs(diff)
    return 0.5 * diff * diff / beta if diff < beta else diff - 0.5 * beta


@pytest.mark.parametrize("cls_loss", ["focal", "ce"])
def test_losses_match_direct_formulas(cls_loss):
    torch.manual_seed(0)
    cfg = small_cfg(cls_loss=cls_loss)
    evaluator = make_retinanet_loss_evaluator(cfg, box_coder=build_retinanet(cfg, 8).box_coder)
    box_cls = torch.randn(1, NUM_CLASSES, 1, len(HAND_ANCHORS))
    box_reg = torch.randn(1, 4, 1, len(HAND_ANCHORS)) * 0.2
    cls_loss_value, reg_loss_value = evaluator(
        [[hand_anchor_boxlist()]], [box_cls], [box_reg], [target_boxlist(HAND_BOXES, HAND_LABELS, (300, 300))]
    )

    logits = box_cls[0, :, 0, :].t()  # [anchors, classes]
    offset = evaluator.box_coder.convention.pixel_offset
    labels = torch.tensor(EXPECTED_LABELS)
    valid = labels >= 0
    one_hot = torch.stack([(labels == c + 1).float() for c in range(NUM_CLASSES)], dim=1)
    num_pos = int((labels > 0).sum())
    if cls_loss == "focal":
        expected_cls = sigmoid_focal_loss(logits[valid], one_hot[valid], alpha=0.25, gamma=2.0, reduction="sum")
    else:
        p = torch.sigmoid(logits[valid].double())
        y = one_hot[valid].double()
        expected_cls = -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).sum()
    assert cls_loss_value.item() == pytest.approx(expected_cls.item() / num_pos, rel=1e-5)

    expected_reg = 0.0
    for idx, label in enumerate(EXPECTED_LABELS):
        if label > 0:
            gt = HAND_BOXES[0] if label == 3 else HAND_BOXES[1]
            deltas = hand_encode(gt, HAND_ANCHORS[idx], offset=offset)
            expected_reg += sum(hand_smooth_l1(box_reg[0, k, 0, idx].item() - deltas[k], 0.11) for k in range(4))
    assert reg_loss_value.item() == pytest.approx(expected_reg / (num_pos * 4.0), rel=1e-5)


def test_count_samples_and_optimal_bias_against_torchvision_iou():
    cfg = small_cfg()
    cfg.DATALOADER.SIZE_DIVISIBILITY = 0
    module = build_retinanet(cfg, in_channels=8)
    # a 64 x 64 image: 8x8 + 4x4 + 2x2 + 1x1 + 1x1 = 86 locations, 774 anchors
    box = [[8.0, 8.0, 40.0, 40.0]]
    counts = module.count_samples([target_boxlist(box, [1], (64, 64))], [(64, 64)])
    assert counts.dtype == torch.float64

    anchors = torch.cat(module.positions_for_image_size((64, 64)))
    assert anchors.shape[0] == 774
    continuous = module.box_coder.convention.to_continuous  # torchvision's boxes are continuous
    iou = box_iou(continuous(torch.tensor(box)), continuous(anchors))[0]
    positive = (iou >= 0.5) | (iou == iou.max())
    ignored = (iou >= 0.4) & ~positive
    expected_valid = 774 - int(ignored.sum())
    assert counts.tolist() == [expected_valid * NUM_CLASSES, int(positive.sum())]

    info = module.set_bias_from_counts(counts)
    n, n_fg = counts.tolist()
    assert info["pi"] == pytest.approx(n_fg / n)
    bias = module.head.cls_logits.bias
    assert torch.allclose(bias, torch.full_like(bias, -math.log(n / n_fg - 1)), atol=1e-6)
    assert torch.sigmoid(bias[0]).item() == pytest.approx(n_fg / n, rel=1e-4)


def test_count_samples_rejects_counts_without_foreground():
    module = build_retinanet(small_cfg(), in_channels=8)
    counts = module.count_samples([target_boxlist([], [], (64, 64))], [(64, 64)])
    assert counts[1].item() == 0
    with pytest.raises(ValueError, match="N\\^f=0"):
        module.set_bias_from_counts(counts)


def test_postprocessor_threshold_classwise_nms_and_cap():
    anchors = BoxList(torch.tensor([[0, 0, 20, 20], [1, 1, 21, 21], [0, 0, 20, 20], [50, 50, 70, 70]],
                                   dtype=torch.float32), (100, 100), mode="xyxy")
    probs = torch.tensor([[0.9, 0.0], [0.8, 0.0], [0.0, 0.7], [0.04, 0.6]])  # [anchors, classes]
    logits = torch.logit(probs.clamp(1e-6, 1 - 1e-6)).t().reshape(1, 2, 1, 4)
    deltas = torch.zeros(1, 4, 1, 4)
    post = RetinaNetPostProcessor(pre_nms_thresh=0.05, pre_nms_top_n=1000, nms_thresh=0.5,
                                  fpn_post_nms_top_n=100, min_size=0, num_classes=3)
    result = post([[anchors]], [logits], [deltas])[0]

    # reference: the same candidates through torchvision's class-wise NMS
    candidates = (probs > 0.05).nonzero()
    boxes, scores, classes = anchors.bbox[candidates[:, 0]], probs[candidates[:, 0], candidates[:, 1]], candidates[:, 1]
    keep = batched_nms(boxes, scores, classes, 0.5)
    assert sorted(result.get_field("scores").tolist()) == pytest.approx(sorted(scores[keep].tolist()))
    assert sorted(result.get_field("labels").tolist()) == sorted((classes[keep] + 1).tolist())
    assert len(result) == 3  # anchor 1 suppressed by anchor 0 (same class), 0.04 below threshold

    capped = RetinaNetPostProcessor(0.05, 1000, 0.5, 2, 0, 3)([[anchors]], [logits], [deltas])[0]
    assert sorted(capped.get_field("scores").tolist(), reverse=True) == pytest.approx([0.9, 0.7])


def count_parameters(module):
    return sum(p.numel() for p in module.parameters())


def test_coco_r50_fpn_parameter_count_matches_torchvision():
    cfg = default_cfg.clone()
    cfg.merge_from_file(os.path.join(ROOT, "configs", "retinanet", "retinanet_R-50-FPN_1x.yaml"))
    backbone = build_backbone(cfg)
    ours = count_parameters(backbone) + count_parameters(build_retinanet(cfg, backbone.out_channels))
    assert abs(ours - 37.9e6) < 0.1e6

    # torchvision's RetinaNet (80 classes) differs in two known ways: without weights its BatchNorm
    # layers are trainable (affine parameters; ours are frozen buffers), and its P6 conv reads P5
    # (256 channels) where maskrcnn-benchmark's reads C5 (2048 channels, RETINANET.USE_C5).
    reference = torchvision.models.detection.retinanet_resnet50_fpn(
        weights=None, weights_backbone=None, num_classes=NUM_CLASSES * 20
    )
    batchnorm = sum(count_parameters(m) for m in reference.modules() if isinstance(m, torch.nn.BatchNorm2d))
    p6_from_c5 = 3 * 3 * (2048 - 256) * 256
    assert ours == count_parameters(reference) - batchnorm + p6_from_c5


CONFIGS = sorted(
    glob.glob(os.path.join(ROOT, "configs", "retinanet", "*.yaml"))
    + glob.glob(os.path.join(ROOT, "configs", "fcos", "*.yaml"))
    + glob.glob(os.path.join(ROOT, "configs", "shapes", "retinanet_*.yaml"))
    + glob.glob(os.path.join(ROOT, "configs", "shapes", "fcos_*.yaml"))
)


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
def test_configs_build_and_run(path):
    cfg = default_cfg.clone()
    cfg.merge_from_file(path)
    assert cfg.MODEL.RETINANET_ON != cfg.MODEL.FCOS_ON
    backbone = build_backbone(cfg).eval()
    head = (build_fcos if cfg.MODEL.FCOS_ON else build_retinanet)(cfg, backbone.out_channels).eval()
    if "shapes" in path:  # small enough to run a forward pass on CPU
        images = ImageList(torch.zeros(1, 3, 128, 128), [(128, 128)])
        with torch.no_grad():
            detections, _ = head(images, backbone(images.tensors))
        assert len(detections) == 1 and detections[0].size == (128, 128)
