"""What every dense head (RetinaNet, FCOS, ATSS, PAA) must do, checked on all of them alike:
a batch without any box trains (finite losses, zero box and quality losses, finite gradients that
still reach the classifier), and detections are inside the image with a positive area."""
import pytest
import torch

from maskrcnn_benchmark.config import cfg as default_cfg
from maskrcnn_benchmark.modeling.dense_heads.build import build_dense_head
from maskrcnn_benchmark.structures.image_list import ImageList

from helpers import fpn_features, target_boxlist

CHANNELS = 64  # GroupNorm(32, C) towers on 1 x 1 maps need C > 32 in training
# (flag, config group, its box / quality loss keys)
HEADS = {
    "retinanet": ("RETINANET_ON", "RETINANET", ("loss_retina_reg",)),
    "fcos": ("FCOS_ON", "FCOS", ("loss_reg", "loss_centerness")),
    "atss": ("ATSS_ON", "ATSS", ("loss_reg", "loss_centerness")),
    "paa": ("PAA_ON", "PAA", ("loss_reg", "loss_iou")),
}


def small_head(name, **one_stage):
    flag, group, _ = HEADS[name]
    cfg = default_cfg.clone()
    cfg.MODEL[flag] = True
    cfg.MODEL[group].NUM_CLASSES = 4
    cfg.MODEL[group].NUM_CONVS = 1
    for key, value in one_stage.items():
        cfg.MODEL.SAMPLING_FREE.ONE_STAGE[key] = value
    cfg.DATALOADER.SIZE_DIVISIBILITY = 32
    torch.manual_seed(0)
    return build_dense_head(cfg, CHANNELS)


@pytest.mark.parametrize("name", sorted(HEADS))
@pytest.mark.parametrize("cls_loss,guided", [("focal", "none"), ("ce", "none"), ("ce", "guided")])
def test_a_batch_without_boxes_trains(name, cls_loss, guided):
    head = small_head(name, CLS_LOSS=cls_loss, GUIDED=guided).train()
    features = [f.requires_grad_() for f in fpn_features(64, 64, channels=CHANNELS, batch=2)]
    images = ImageList(torch.zeros(2, 3, 64, 64), [(64, 64), (60, 50)])
    _, losses = head(images, features, [target_boxlist([], [], (64, 64)), target_boxlist([], [], (50, 60))])
    for key in HEADS[name][2]:
        assert losses[key].item() == 0.0, key
    total = sum(value for key, value in losses.items() if key.startswith("loss"))
    assert torch.isfinite(total)
    total.backward()
    assert all(torch.isfinite(f.grad).all() for f in features)
    assert all(torch.isfinite(p.grad).all() for p in head.parameters() if p.grad is not None)
    if guided == "none":
        # (Guided scaling has no usable L_loc / L_cls ratio yet and scales by 0: its choice.)
        assert head.classification_layer().weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", sorted(HEADS))
def test_detections_lie_in_the_image_and_have_an_area(name):
    head = small_head(name).eval()
    with torch.no_grad():
        head.classification_layer().bias.fill_(0.0)  # p = 0.5 everywhere: many candidates
        for parameter in head.head.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
        images = ImageList(torch.zeros(2, 3, 64, 64), [(64, 64), (40, 56)])
        detections, _ = head(images, fpn_features(64, 64, channels=CHANNELS, batch=2))
    for boxes, (height, width) in zip(detections, images.image_sizes):
        assert len(boxes) > 0 and boxes.size == (width, height)
        xyxy = boxes.bbox
        assert (boxes.area() > 0).all()
        assert (xyxy[:, 0] >= 0).all() and (xyxy[:, 1] >= 0).all()
        assert (xyxy[:, 2] <= width).all() and (xyxy[:, 3] <= height).all()
        assert ((boxes.get_field("labels") >= 1) & (boxes.get_field("labels") <= 3)).all()


CLS_KEY = {"retinanet": "loss_retina_cls", "fcos": "loss_cls", "atss": "loss_cls", "paa": "loss_cls"}
SF_NAME = {"retinanet": "retina", "fcos": "fcos", "atss": "atss", "paa": "paa"}


@pytest.mark.parametrize("name", sorted(HEADS))
def test_guided_scaling_follows_the_box_loss_and_leaves_the_other_losses(name):
    features = fpn_features(64, 64, channels=CHANNELS)
    images = ImageList(torch.zeros(1, 3, 64, 64), [(64, 64)])
    targets = [target_boxlist([[4.0, 6.0, 60.0, 62.0]], [2], (64, 64))]
    box_key, *other_keys = HEADS[name][2]
    sf = SF_NAME[name]
    plain = small_head(name, CLS_LOSS="ce").train()
    _, plain_losses = plain(images, features, targets)
    # GUIDED "none" with LOSS_SCALE 1 is the baseline: the classification loss as computed
    assert plain_losses[CLS_KEY[name]].item() == plain_losses[f"sf_{sf}_cls"].item()
    assert f"loss_{sf}_log_delta" not in plain_losses and plain_losses[box_key] > 0

    guided = small_head(name, CLS_LOSS="ce", GUIDED="guided").train()
    guided.load_state_dict(plain.state_dict(), strict=False)  # the same weights, plus delta = 1
    _, guided_losses = guided(images, features, targets)
    # g * delta * L_cls with g = L_loc / L_cls and delta = 1 is L_loc; -log(delta) = 0
    assert guided_losses[CLS_KEY[name]].item() == pytest.approx(guided_losses[box_key].item(), rel=1e-5)
    assert guided_losses[f"loss_{sf}_log_delta"].item() == pytest.approx(0.0, abs=1e-7)
    for key in [box_key] + other_keys:  # centre-ness / IoU branches are not scaled
        assert guided_losses[key].item() == pytest.approx(plain_losses[key].item(), rel=1e-6), key
