"""ResNet / ResNeXt bodies, FPN and build_backbone: shapes, strides, sizes against torchvision,
freezing, GroupNorm training, deformable stages."""
import math
from collections import OrderedDict

import pytest
import torch
import torchvision
from torch import nn
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops import feature_pyramid_network as tv_fpn

from maskrcnn_benchmark.config import cfg as global_cfg
from maskrcnn_benchmark.layers import FrozenBatchNorm2d
from maskrcnn_benchmark.modeling import registry
from maskrcnn_benchmark.modeling.backbone import build_backbone
from maskrcnn_benchmark.modeling.backbone.deform_conv import DFConv2d
from maskrcnn_benchmark.modeling.backbone.fpn import FPN, LastLevelMaxPool, LastLevelP6P7
from maskrcnn_benchmark.modeling.backbone.resnet import ResNet, ResNetHead, StageSpec
from maskrcnn_benchmark.modeling.make_layers import conv_with_kaiming_uniform
from maskrcnn_benchmark.utils.c2_model_loading import load_torchvision_resnet

FPN_OUT = 24


def narrow_cfg(conv_body, **resnets):
    """A tiny-width config (stem 8, res2 16 channels) so every depth runs in well under a second."""
    cfg = global_cfg.clone()
    cfg.MODEL.BACKBONE.CONV_BODY = conv_body
    cfg.MODEL.BACKBONE.FREEZE_CONV_BODY_AT = 0
    cfg.MODEL.RESNETS.STEM_OUT_CHANNELS = 8
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 16
    cfg.MODEL.RESNETS.WIDTH_PER_GROUP = 4
    cfg.MODEL.RESNETS.BACKBONE_OUT_CHANNELS = FPN_OUT
    for key, value in resnets.items():
        cfg.MODEL.RESNETS[key] = value
    return cfg


def torchvision_like_cfg(conv_body, norm="BatchNorm", **resnets):
    """Full-width body laid out as torchvision's (stride in the 3x3 conv)."""
    cfg = global_cfg.clone()
    cfg.MODEL.BACKBONE.CONV_BODY = conv_body
    cfg.MODEL.BACKBONE.FREEZE_CONV_BODY_AT = 0
    cfg.MODEL.RESNETS.STRIDE_IN_1X1 = False
    cfg.MODEL.RESNETS.STEM_FUNC = "StemWith" + norm
    cfg.MODEL.RESNETS.TRANS_FUNC = "BottleneckWith" + norm
    for key, value in resnets.items():
        cfg.MODEL.RESNETS[key] = value
    return cfg


def expected_layout(conv_body):
    """(strides, channels) of the maps a registered body should return with narrow_cfg."""
    if conv_body.endswith("-C4"):
        return [16], [16 * 4]
    if conv_body.endswith("-C5"):
        return [32], [16 * 8]
    if conv_body.endswith("-FPN-RETINANET"):
        return [8, 16, 32, 64, 128], [FPN_OUT] * 5
    if conv_body.endswith("-FPN-RETINANET-VOC"):  # the authors' VOC RetinaNet: P4-P7
        return [16, 32, 64, 128], [FPN_OUT] * 4
    assert conv_body.endswith("-FPN")
    return [4, 8, 16, 32, 64], [FPN_OUT] * 5


@pytest.mark.parametrize("conv_body", sorted(registry.BACKBONES))
def test_every_registered_backbone_has_the_stated_strides_and_channels(conv_body):
    torch.manual_seed(0)
    model = build_backbone(narrow_cfg(conv_body)).eval()
    height, width = 96, 160
    with torch.no_grad():
        features = model(torch.randn(1, 3, height, width))
    strides, channels = expected_layout(conv_body)
    assert len(features) == len(strides)
    for feature, stride, channel in zip(features, strides, channels):
        # every stride-2 step (conv with padding, max-pool) rounds the size up
        assert tuple(feature.shape) == (1, channel, math.ceil(height / stride), math.ceil(width / stride))
        assert torch.isfinite(feature).all()
    assert model.out_channels == channels[-1]


def test_the_required_names_are_registered():
    required = {
        "R-50-C4", "R-50-C5", "R-101-C4", "R-101-C5", "R-50-FPN", "R-101-FPN", "R-152-FPN",
        "R-50-FPN-RETINANET", "R-101-FPN-RETINANET", "R-18-FPN", "R-34-FPN",
        "R-18-FPN-RETINANET", "R-34-FPN-RETINANET",
    }  # fmt: skip
    assert required <= set(registry.BACKBONES)


def test_unknown_body_and_bad_settings_are_named():
    cfg = narrow_cfg("R-50-FPN")
    cfg.MODEL.BACKBONE.CONV_BODY = "R-51-FPN"
    with pytest.raises(KeyError, match="CONV_BODY: unknown 'R-51-FPN'"):
        build_backbone(cfg)
    with pytest.raises(KeyError, match="TRANS_FUNC='BottleneckWithMagic'"):
        build_backbone(narrow_cfg("R-50-FPN", TRANS_FUNC="BottleneckWithMagic"))
    with pytest.raises(ValueError, match="RES5_DILATION=2"):
        build_backbone(narrow_cfg("R-50-FPN", RES5_DILATION=2))
    with pytest.raises(ValueError, match="TRANS_FUNC='BasicBlockWithGN'"):
        build_backbone(narrow_cfg("R-50-C4", TRANS_FUNC="BasicBlockWithGN"))
    with pytest.raises(ValueError, match="NUM_GROUPS=4"):
        build_backbone(narrow_cfg("R-18-C5", NUM_GROUPS=4))


def _parameter_count(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    "conv_body, resnets, torchvision_builder",
    [
        ("R-18-C5", {"RES2_OUT_CHANNELS": 64}, torchvision.models.resnet18),
        ("R-34-C5", {"RES2_OUT_CHANNELS": 64}, torchvision.models.resnet34),
        ("R-50-C5", {}, torchvision.models.resnet50),
        ("R-101-C5", {}, torchvision.models.resnet101),
        ("R-152-C5", {}, torchvision.models.resnet152),
        ("R-101-C5", {"NUM_GROUPS": 32, "WIDTH_PER_GROUP": 8}, torchvision.models.resnext101_32x8d),
        ("R-50-C5", {"NUM_GROUPS": 32, "WIDTH_PER_GROUP": 4}, torchvision.models.resnext50_32x4d),
    ],
)
def test_body_sizes_equal_torchvision_without_its_classifier(conv_body, resnets, torchvision_builder):
    with torch.device("meta"):  # shapes only: no memory, no init time
        ours = ResNet(torchvision_like_cfg(conv_body, **resnets))
        reference = torchvision_builder()
    assert _parameter_count(ours) == _parameter_count(reference) - _parameter_count(reference.fc)
    # and after renaming, name for name and shape for shape (running statistics included)
    renamed = load_torchvision_resnet(reference.state_dict())
    ours_state = {k: v for k, v in ours.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert {k: tuple(v.shape) for k, v in renamed.items()} == {k: tuple(v.shape) for k, v in ours_state.items()}


def test_frozen_batch_norm_body_has_the_same_conv_parameters_and_fixed_affine_buffers():
    with torch.device("meta"):
        frozen = ResNet(torchvision_like_cfg("R-50-C5", norm="FixedBatchNorm"))
        reference = torchvision.models.resnet50()
    bn_affine = sum(m.weight.numel() + m.bias.numel() for m in reference.modules() if isinstance(m, nn.BatchNorm2d))
    assert _parameter_count(frozen) == _parameter_count(reference) - _parameter_count(reference.fc) - bn_affine
    norms = [m for name, m in frozen.named_modules() if name.endswith(("bn1", "bn2", "bn3", "downsample.1"))]
    assert len(norms) == 53 and all(isinstance(m, FrozenBatchNorm2d) for m in norms)


@pytest.mark.parametrize("freeze_at", [0, 1, 2, 3, 4, 5])
def test_freeze_conv_body_at_freezes_exactly_the_stated_stages(freeze_at):
    cfg = narrow_cfg("R-18-FPN", STEM_FUNC="StemWithBatchNorm", TRANS_FUNC="BottleneckWithBatchNorm")
    cfg.MODEL.BACKBONE.FREEZE_CONV_BODY_AT = freeze_at
    model = build_backbone(cfg)
    frozen_prefixes = tuple(["body.stem."] + [f"body.layer{i}." for i in range(1, freeze_at)]) if freeze_at else ()
    for name, param in model.named_parameters():
        assert param.requires_grad == (not name.startswith(frozen_prefixes)), name
    # trainable BN in a frozen stage keeps its statistics in train mode
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items() if "running_mean" in k}
    model(torch.randn(2, 3, 64, 64))
    after = model.state_dict()
    for key, value in before.items():
        unchanged = torch.equal(value, after[key])
        assert unchanged == key.startswith(frozen_prefixes), key


def test_freezing_more_stages_than_exist_is_refused():
    cfg = narrow_cfg("R-50-C4")
    cfg.MODEL.BACKBONE.FREEZE_CONV_BODY_AT = 5
    with pytest.raises(ValueError, match="FREEZE_CONV_BODY_AT=5"):
        build_backbone(cfg)


def test_group_norm_backbone_trains_on_a_toy_regression():
    torch.manual_seed(0)
    cfg = narrow_cfg("R-18-FPN", STEM_FUNC="StemWithGN", TRANS_FUNC="BottleneckWithGN")
    cfg.MODEL.FPN.USE_GN = True
    cfg.MODEL.GROUP_NORM.NUM_GROUPS = 4  # the built config's setting counts, not the global one
    assert global_cfg.MODEL.GROUP_NORM.NUM_GROUPS == 32
    backbone = build_backbone(cfg)
    norms = [m for m in backbone.modules() if isinstance(m, nn.GroupNorm)]
    assert norms and all(m.num_groups == 4 for m in norms)
    assert not any(isinstance(m, (FrozenBatchNorm2d, nn.BatchNorm2d)) for m in backbone.modules())
    readout = nn.Linear(FPN_OUT, 1)
    images = torch.randn(8, 3, 64, 64)
    targets = images[:, 0].mean(dim=(1, 2), keepdim=False).unsqueeze(1) * 10  # per-image red mean

    def loss_fn():
        pooled = torch.stack([f.mean(dim=(2, 3)) for f in backbone(images)]).mean(0)
        return nn.functional.mse_loss(readout(pooled), targets)

    optimizer = torch.optim.Adam(list(backbone.parameters()) + list(readout.parameters()), lr=3e-3)
    initial = loss_fn().item()
    for _ in range(40):
        optimizer.zero_grad()
        loss = loss_fn()
        loss.backward()
        optimizer.step()
    assert backbone.body.stem.bn1.weight.grad.abs().sum() > 0
    assert loss_fn().item() < 0.3 * initial


def test_resnet_head_builds_res5_on_pooled_features():
    torch.manual_seed(0)
    head = ResNetHead(
        "BottleneckWithFixedBatchNorm",
        stages=(StageSpec(index=4, block_count=3, return_features=False),),
        num_groups=1,
        width_per_group=4,
        res2_out_channels=16,
    ).eval()
    out = head(torch.randn(2, 64, 14, 14))
    assert head.out_channels == 128 and out.shape == (2, 128, 7, 7)
    dilated = ResNetHead(
        "BottleneckWithFixedBatchNorm",
        stages=(StageSpec(4, 3, False),),
        width_per_group=4,
        res2_out_channels=16,
        stride_init=1,
        dilation=2,
    )
    assert dilated(torch.randn(1, 64, 14, 14)).shape == (1, 128, 14, 14)
    # its names are the body's res5 names, so res5 weights load into either place
    body = ResNet(narrow_cfg("R-50-C5"))
    body_res5 = {k: v.shape for k, v in body.state_dict().items() if k.startswith("layer4.")}
    assert {k: v.shape for k, v in head.state_dict().items()} == body_res5


def _copy_conv(target, source):
    target.weight.data.copy_(source.weight)
    target.bias.data.copy_(source.bias)


def _torchvision_inputs(shapes):
    torch.manual_seed(0)
    return OrderedDict((f"c{i}", torch.randn(*shape)) for i, shape in enumerate(shapes, 2))


@pytest.mark.parametrize("sizes", [[(32, 48), (16, 24), (8, 12), (4, 6)], [(27, 35), (14, 18), (7, 9), (4, 5)]])
def test_fpn_with_max_pool_matches_torchvision(sizes):
    in_channels = [8, 16, 32, 64]
    inputs = _torchvision_inputs([(2, c, h, w) for c, (h, w) in zip(in_channels, sizes)])
    ours = FPN(in_channels, 12, conv_with_kaiming_uniform(), LastLevelMaxPool())
    reference = FeaturePyramidNetwork(in_channels, 12, extra_blocks=tv_fpn.LastLevelMaxPool())
    for level in range(4):
        _copy_conv(reference.inner_blocks[level][0], getattr(ours, f"fpn_inner{level + 1}"))
        _copy_conv(reference.layer_blocks[level][0], getattr(ours, f"fpn_layer{level + 1}"))
    expected = list(reference(inputs).values())
    got = ours(list(inputs.values()))
    assert len(got) == 5
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e)


@pytest.mark.parametrize("from_c5", [True, False])
def test_fpn_p3_p7_matches_torchvision(from_c5):
    in_channels = [8, 16, 32, 64]
    out_channels = 12
    inputs = _torchvision_inputs([(1, c, s, s) for c, s in zip(in_channels, (32, 16, 8, 4))])
    p6_in = 64 if from_c5 else out_channels
    ours = FPN([0] + in_channels[1:], out_channels, conv_with_kaiming_uniform(), LastLevelP6P7(p6_in, out_channels))
    assert sorted(n for n, _ in ours.named_children() if n.startswith("fpn_")) == [
        "fpn_inner2", "fpn_inner3", "fpn_inner4", "fpn_layer2", "fpn_layer3", "fpn_layer4"
    ]  # fmt: skip
    extra = tv_fpn.LastLevelP6P7(p6_in, out_channels)
    reference = FeaturePyramidNetwork(in_channels[1:], out_channels, extra_blocks=extra)
    for level in range(3):
        _copy_conv(reference.inner_blocks[level][0], getattr(ours, f"fpn_inner{level + 2}"))
        _copy_conv(reference.layer_blocks[level][0], getattr(ours, f"fpn_layer{level + 2}"))
    _copy_conv(reference.extra_blocks.p6, ours.top_blocks.p6)
    _copy_conv(reference.extra_blocks.p7, ours.top_blocks.p7)
    c3_to_c5 = OrderedDict(list(inputs.items())[1:])
    expected = list(reference(c3_to_c5).values())
    got = ours(list(inputs.values()))
    assert [tuple(g.shape[-2:]) for g in got] == [(16, 16), (8, 8), (4, 4), (2, 2), (1, 1)]
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e)


def test_p6_source_follows_use_c5_even_when_channel_counts_coincide():
    torch.manual_seed(0)
    c5, p5 = torch.randn(1, 12, 8, 8), torch.randn(1, 12, 8, 8)
    from_c5 = LastLevelP6P7(12, 12, use_p5=False)
    torch.testing.assert_close(from_c5(c5, p5)[0], from_c5.p6(c5))
    cfg = narrow_cfg("R-18-FPN-RETINANET", RES2_OUT_CHANNELS=3)  # C5 has 3 * 8 = FPN_OUT channels
    cfg.MODEL.RETINANET.USE_C5 = True
    assert build_backbone(cfg).fpn.top_blocks.use_P5 is False
    cfg.MODEL.RETINANET.USE_C5 = False
    assert build_backbone(cfg).fpn.top_blocks.use_P5 is True


def test_deformable_conv_with_integer_offsets_samples_shifted_pixels():
    torch.manual_seed(0)
    dcn = DFConv2d(4, 6, with_modulated_dcn=False, kernel_size=3)
    conv = nn.Conv2d(4, 6, 3, padding=1, bias=False)
    conv.weight.data.copy_(dcn.conv.weight)
    x = torch.randn(1, 4, 10, 12)
    # fresh: zero offsets, i.e. a plain convolution
    torch.testing.assert_close(dcn(x), conv(x))
    # every tap displaced by +1 pixel in x == the plain conv read one column to the right
    dcn.offset.bias.data.view(9, 2)[:, 1] = 1.0
    shifted = dcn(x)
    torch.testing.assert_close(shifted[..., :, :-2], conv(x)[..., :, 1:-1])
    modulated = DFConv2d(4, 6, with_modulated_dcn=True, kernel_size=3)
    conv.weight.data.copy_(modulated.conv.weight)
    torch.testing.assert_close(modulated(x), 0.5 * conv(x))  # mask = sigmoid(0)


def test_deformable_stages_start_as_their_plain_counterparts():
    torch.manual_seed(0)
    plain = ResNet(narrow_cfg("R-50-C5", NUM_GROUPS=2, WIDTH_PER_GROUP=4)).eval()
    dcn_cfg = narrow_cfg("R-50-C5", NUM_GROUPS=2, WIDTH_PER_GROUP=4, STAGE_WITH_DCN=(False, True, True, True))
    deformable = ResNet(dcn_cfg).eval()
    names = dict(deformable.named_parameters())
    assert "layer2.0.conv2.conv.weight" in names and "layer2.0.conv2.offset.weight" in names
    assert "layer1.0.conv2.weight" in names
    state = {}
    for key, value in plain.state_dict().items():
        if not key.startswith("layer1."):  # res3-res5 are deformable: their 3x3 weight sits one level down
            key = key.replace(".conv2.weight", ".conv2.conv.weight")
        state[key] = value
    missing, unexpected = deformable.load_state_dict(state, strict=False)
    assert not unexpected and all(".conv2.offset." in k for k in missing)
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(deformable(x)[0], plain(x)[0])


def test_resnext_101_64x4d_dcn_layout():
    cfg = torchvision_like_cfg(
        "R-101-FPN-RETINANET",
        norm="FixedBatchNorm",
        NUM_GROUPS=64,
        WIDTH_PER_GROUP=4,
        STAGE_WITH_DCN=(False, True, True, True),
        WITH_MODULATED_DCN=True,
    )
    with torch.device("meta"):
        body = ResNet(cfg)
    conv = body.layer4[0].conv2
    assert isinstance(conv, DFConv2d) and conv.with_modulated_dcn
    assert tuple(conv.conv.weight.shape) == (2048, 2048 // 64, 3, 3)
    assert tuple(conv.offset.weight.shape) == (27, 2048, 3, 3)
    assert body.out_channels_list == [256, 512, 1024, 2048]
