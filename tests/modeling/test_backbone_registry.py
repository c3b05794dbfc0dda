"""Every registered backbone builds its own layout from the default config, and GroupNorm settings
reach every layer from the config it is built from (never from the global one)."""
import math

import pytest
import torch
from torch import nn

from maskrcnn_benchmark.config import cfg as global_cfg
from maskrcnn_benchmark.modeling import registry
from maskrcnn_benchmark.modeling.backbone import build_backbone
from maskrcnn_benchmark.modeling.backbone.resnet import ResNetHead, StageSpec
from maskrcnn_benchmark.modeling.make_layers import GroupNormSettings, group_norm, make_conv3x3, make_fc

import maskrcnn_benchmark.modeling.backbone  # noqa: F401  (fills registry.BACKBONES)


def narrow_default_cfg():
    """The default config (CONV_BODY stays 'R-50-C4') with small widths, so 20 bodies build fast."""
    cfg = global_cfg.clone()
    cfg.MODEL.RESNETS.STEM_OUT_CHANNELS = 8
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 16
    cfg.MODEL.RESNETS.WIDTH_PER_GROUP = 4
    cfg.MODEL.RESNETS.BACKBONE_OUT_CHANNELS = 24
    return cfg


def layout_of(name):
    """(strides, channels) the registered name promises, with narrow_default_cfg's widths."""
    if name.endswith("-C4"):
        return [16], [64]
    if name.endswith("-C5"):
        return [32], [128]
    if name.endswith("-FPN-RETINANET"):
        return [8, 16, 32, 64, 128], [24] * 5
    if name.endswith("-FPN-RETINANET-VOC"):  # P4-P7
        return [16, 32, 64, 128], [24] * 4
    return [4, 8, 16, 32, 64], [24] * 5


@pytest.mark.parametrize("name", sorted(registry.BACKBONES))
def test_each_registered_builder_builds_its_own_name_from_the_default_config(name):
    cfg = narrow_default_cfg()
    assert cfg.MODEL.BACKBONE.CONV_BODY == "R-50-C4"
    model = registry.BACKBONES[name](cfg).eval()
    with torch.no_grad():
        features = model(torch.randn(1, 3, 64, 96))
    strides, channels = layout_of(name)
    assert [tuple(f.shape) for f in features] == [
        (1, c, math.ceil(64 / s), math.ceil(96 / s)) for s, c in zip(strides, channels)
    ]


def test_retinanet_body_with_the_untouched_defaults():
    # The reported failure: 'FPN needs at least one input with channels > 0'.
    cfg = global_cfg.clone()
    model = registry.BACKBONES["R-50-FPN-RETINANET"](cfg)
    assert model.out_channels == cfg.MODEL.RESNETS.BACKBONE_OUT_CHANNELS
    assert len(model.fpn.inner_blocks) == 3  # C3-C5


def gn_group_counts(module):
    return sorted({m.num_groups for m in module.modules() if isinstance(m, nn.GroupNorm)})


def test_group_norm_settings_come_from_the_config_being_built(monkeypatch):
    # The global config asks for 8 groups: nothing may read it.
    monkeypatch.setitem(global_cfg.MODEL.GROUP_NORM, "NUM_GROUPS", 8)
    cfg = narrow_default_cfg()
    cfg.MODEL.BACKBONE.CONV_BODY = "R-18-FPN"
    cfg.MODEL.RESNETS.TRANS_FUNC = "BottleneckWithGN"
    cfg.MODEL.RESNETS.STEM_FUNC = "StemWithGN"
    cfg.MODEL.FPN.USE_GN = True
    cfg.MODEL.GROUP_NORM.NUM_GROUPS = 4
    assert gn_group_counts(build_backbone(cfg)) == [4]
    cfg.MODEL.GROUP_NORM.NUM_GROUPS = -1
    cfg.MODEL.GROUP_NORM.DIM_PER_GP = 4
    norms = [m for m in build_backbone(cfg).modules() if isinstance(m, nn.GroupNorm)]
    assert all(m.num_groups == m.num_channels // 4 for m in norms)
    assert {m.num_channels for m in norms} >= {8, 16, 128}
    # without settings the builders use maskrcnn-benchmark's defaults, not the global config
    assert group_norm(64).num_groups == 32
    assert make_conv3x3(8, 64, use_gn=True)[1].num_groups == 32


def test_c4_head_gets_the_groups_it_is_given():
    # A C4 box head (res5 on pooled RoIs) with 16 groups asked for used to get 32.
    head = ResNetHead(
        "BottleneckWithGN", (StageSpec(index=4, block_count=1, return_features=False),),
        width_per_group=8, res2_out_channels=32, gn=GroupNormSettings(num_groups=16),
    )
    assert gn_group_counts(head) == [16]
    assert gn_group_counts(make_fc(32, 64, use_gn=True, gn=GroupNormSettings(num_groups=16))) == [16]
    settings = GroupNormSettings.from_config(global_cfg)
    assert (settings.dim_per_gp, settings.num_groups, settings.epsilon) == (-1, 32, 1e-5)


def test_a_c4_detector_with_group_norm_uses_the_configs_groups_everywhere(monkeypatch):
    # The reported case: the C4 box head (res5 on pooled RoIs) got 32 groups with 16 asked for.
    from maskrcnn_benchmark.modeling.detector import build_detection_model

    monkeypatch.setitem(global_cfg.MODEL.GROUP_NORM, "NUM_GROUPS", 32)
    cfg = narrow_default_cfg()  # R-50-C4, Faster R-CNN
    cfg.MODEL.RESNETS.TRANS_FUNC = "BottleneckWithGN"
    cfg.MODEL.RESNETS.STEM_FUNC = "StemWithGN"
    cfg.MODEL.GROUP_NORM.NUM_GROUPS = 4
    model = build_detection_model(cfg)
    assert gn_group_counts(model.backbone) == [4]
    assert gn_group_counts(model.roi_heads.box.feature_extractor.head) == [4]
