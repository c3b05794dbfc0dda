"""make_layers builders and modeling.utils.cat."""
import pytest
import torch
from torch import nn

from maskrcnn_benchmark.config import cfg as global_cfg
from maskrcnn_benchmark.modeling.make_layers import (
    GroupNormSettings,
    conv_with_kaiming_uniform,
    get_group_gn,
    group_norm,
    make_conv3x3,
    make_fc,
)
from maskrcnn_benchmark.modeling.utils import cat


def test_group_count_from_either_setting():
    assert get_group_gn(256, -1, 32) == 32
    assert get_group_gn(256, 16, -1) == 16
    with pytest.raises(ValueError, match="NUM_GROUPS=32 does not divide 48"):
        get_group_gn(48, -1, 32)
    with pytest.raises(ValueError, match="DIM_PER_GP=16, NUM_GROUPS=32"):
        get_group_gn(256, 16, 32)


def test_group_norm_follows_the_settings_it_is_given(monkeypatch):
    norm = group_norm(64)
    assert isinstance(norm, nn.GroupNorm) and norm.num_groups == 32 and norm.eps == 1e-5
    assert group_norm(64, divisor=2).num_groups == 16
    assert group_norm(64, gn=GroupNormSettings(dim_per_gp=8, num_groups=-1)).num_groups == 8
    # the global config is never read: only the config (or settings) passed in counts
    monkeypatch.setitem(global_cfg.MODEL.GROUP_NORM, "NUM_GROUPS", 4)
    assert group_norm(64).num_groups == 32
    local = global_cfg.clone()
    local.MODEL.GROUP_NORM.NUM_GROUPS = 16
    assert group_norm(64, config=local).num_groups == 16


def test_conv_and_fc_builders_shapes_and_init():
    torch.manual_seed(0)
    x = torch.randn(2, 32, 9, 11)
    plain = make_conv3x3(32, 16, dilation=2, stride=2)
    assert isinstance(plain, nn.Conv2d) and plain(x).shape == (2, 16, 5, 6) and plain.bias.abs().sum() == 0
    with_gn = make_conv3x3(32, 64, use_gn=True, use_relu=True)
    assert [type(m) for m in with_gn] == [type(plain), nn.GroupNorm, nn.ReLU] and with_gn[0].bias is None
    assert (with_gn(x) >= 0).all()
    small = make_conv3x3(32, 16, kaiming_init=False)
    assert small.weight.std() < 0.02  # normal(std=0.01) init

    fc = make_fc(128, 64)
    assert isinstance(fc, nn.Linear) and fc(torch.randn(3, 128)).shape == (3, 64)
    fc_gn = make_fc(128, 64, use_gn=True)
    assert fc_gn[0].bias is None and isinstance(fc_gn[1], nn.GroupNorm)

    make_conv = conv_with_kaiming_uniform(use_gn=False, use_relu=True)
    lateral = make_conv(32, 24, 1)
    assert lateral[0].kernel_size == (1, 1) and lateral[0].padding == (0, 0)
    output = make_conv(24, 24, 3)[0]
    assert output.padding == (1, 1)
    # kaiming_uniform(a=1): bound = sqrt(3 / fan_in)
    assert output.weight.abs().max() <= (3 / (24 * 9)) ** 0.5


def test_cat_returns_a_lone_tensor_without_copying():
    a, b = torch.ones(2, 3), torch.zeros(1, 3)
    assert cat([a]) is a
    assert torch.equal(cat([a, b]), torch.tensor([[1.0] * 3, [1.0] * 3, [0.0] * 3]))
    assert cat((a, a), dim=1).shape == (2, 6)
    with pytest.raises(TypeError, match="list or tuple"):
        cat(a)
