"""Pretrained-weight loading: torchvision ResNet state dicts and Caffe2 Detectron pickles."""
import io
import os
import pickle
import struct

import numpy as np
import pytest
import torch
import torchvision

from maskrcnn_benchmark.config import cfg as global_cfg
from maskrcnn_benchmark.modeling.backbone import build_backbone
from maskrcnn_benchmark.modeling.backbone.resnet import ResNet
from maskrcnn_benchmark.utils.c2_model_loading import (
    UnsafePickleError,
    load_c2_format,
    load_torchvision_resnet,
)


def _randomize_batch_norm(model, generator):
    """Non-trivial BN statistics and affine terms, so a wrong mapping shows."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(0.1 * torch.randn(n, generator=generator))
            module.running_var.copy_(0.5 + torch.rand(n, generator=generator))
            module.weight.data.copy_(0.5 + torch.rand(n, generator=generator))
            module.bias.data.copy_(0.1 * torch.randn(n, generator=generator))


def _torchvision_layer4(model, images):
    x = model.maxpool(model.relu(model.bn1(model.conv1(images))))
    return model.layer4(model.layer3(model.layer2(model.layer1(x))))


@pytest.mark.parametrize(
    "conv_body, res2_out, builder",
    [("R-50-C5", 256, torchvision.models.resnet50), ("R-18-C5", 64, torchvision.models.resnet18)],
)
def test_torchvision_resnet_weights_reproduce_its_layer4_features(conv_body, res2_out, builder):
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    reference = builder().eval()  # random weights, built locally
    with torch.no_grad():
        _randomize_batch_norm(reference, generator)

    cfg = global_cfg.clone()
    cfg.MODEL.BACKBONE.CONV_BODY = conv_body
    cfg.MODEL.RESNETS.STRIDE_IN_1X1 = False  # torchvision strides in the 3x3 conv
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = res2_out
    ours = ResNet(cfg).eval()  # FrozenBatchNorm2d throughout
    missing, unexpected = ours.load_state_dict(load_torchvision_resnet(reference.state_dict()), strict=False)
    assert not missing and not unexpected

    images = torch.randn(2, 3, 64, 96, generator=generator)
    with torch.no_grad():
        expected = _torchvision_layer4(reference, images)
        got = ours(images)[0]
    assert got.shape == expected.shape == (2, res2_out * 8, 2, 3)
    relative_error = (got - expected).abs().max() / expected.abs().max()
    assert relative_error < 1e-5


def test_torchvision_mapping_rejects_foreign_keys_and_moves_dcn_weights():
    state = torchvision.models.resnet18().state_dict()
    state["module.head.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match="'module.head.weight'"):
        load_torchvision_resnet(state)
    del state["module.head.weight"]
    renamed = load_torchvision_resnet(state, stage_with_dcn=(False, True, False, False))
    assert "layer2.0.conv2.conv.weight" in renamed and "layer2.0.conv2.weight" not in renamed
    assert "layer1.0.conv2.weight" in renamed and "layer3.0.conv2.weight" in renamed
    assert "stem.conv1.weight" in renamed and "stem.bn1.running_var" in renamed
    assert not any(k.startswith("fc.") or k.endswith("num_batches_tracked") for k in renamed)


# --- Caffe2 Detectron pickles -------------------------------------------------------------------

_NARROW = {"STEM_OUT_CHANNELS": 8, "RES2_OUT_CHANNELS": 16, "WIDTH_PER_GROUP": 4}
_R50_BLOCKS = (3, 4, 6, 3)


def _narrow_cfg(conv_body):
    cfg = global_cfg.clone()
    cfg.MODEL.BACKBONE.CONV_BODY = conv_body
    cfg.MODEL.RESNETS.BACKBONE_OUT_CHANNELS = 24
    for key, value in _NARROW.items():
        cfg.MODEL.RESNETS[key] = value
    return cfg


def _detectron_blob_names_and_targets(block_counts, fpn_levels):
    """Detectron's own blob names, each with the parameter of our backbone it must land in.
    Written out from Detectron's naming scheme, independently of the loader's regexes."""
    pairs = {
        "conv1_w": "body.stem.conv1.weight",
        "res_conv1_bn_s": "body.stem.bn1.weight",
        "res_conv1_bn_b": "body.stem.bn1.bias",
    }
    for stage, count in enumerate(block_counts, 2):
        layer = f"body.layer{stage - 1}"
        for block in range(count):
            prefix = f"res{stage}_{block}"
            for branch, conv, bn in (("2a", "conv1", "bn1"), ("2b", "conv2", "bn2"), ("2c", "conv3", "bn3")):
                pairs[f"{prefix}_branch{branch}_w"] = f"{layer}.{block}.{conv}.weight"
                pairs[f"{prefix}_branch{branch}_bn_s"] = f"{layer}.{block}.{bn}.weight"
                pairs[f"{prefix}_branch{branch}_bn_b"] = f"{layer}.{block}.{bn}.bias"
            if block == 0:
                pairs[f"{prefix}_branch1_w"] = f"{layer}.0.downsample.0.weight"
                pairs[f"{prefix}_branch1_bn_s"] = f"{layer}.0.downsample.1.weight"
                pairs[f"{prefix}_branch1_bn_b"] = f"{layer}.0.downsample.1.bias"
    last = {stage: f"res{stage}_{count - 1}_sum" for stage, count in enumerate(block_counts, 2)}
    for stage in fpn_levels:
        lateral = f"fpn_inner_{last[stage]}" + ("" if stage == 5 else "_lateral")
        for suffix, param in (("w", "weight"), ("b", "bias")):
            pairs[f"{lateral}_{suffix}"] = f"fpn.fpn_inner{stage - 1}.{param}"
            pairs[f"fpn_{last[stage]}_{suffix}"] = f"fpn.fpn_layer{stage - 1}.{param}"
    return pairs


class _Python2StylePickler(pickle._Pickler):
    """Writes bytes as Python 2 ``str`` (BINSTRING) and names numpy.core, as Detectron's files do."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_as_python2_str(self, obj):
        self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_as_python2_str


def _write_pickle(path, obj, protocol):
    if protocol == "python2":
        buffer = io.BytesIO()
        _Python2StylePickler(buffer, protocol=2).dump(obj)
        data = buffer.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
        assert b"_codecs" not in data and b"numpy.core.multiarray" in data
    else:
        data = pickle.dumps(obj, protocol=protocol)
    with open(path, "wb") as handle:
        handle.write(data)
    return str(path)


def _suffix_match(model_keys, loaded):
    """model key -> loaded key, matching whole dotted suffixes (how the checkpointer aligns names)."""
    matches = {}
    for model_key in model_keys:
        hits = [k for k in loaded if model_key == k or model_key.endswith("." + k)]
        assert len(hits) <= 1, (model_key, hits)
        if hits:
            matches[model_key] = hits[0]
    return matches


@pytest.mark.parametrize("protocol, wrapped", [("python2", True), (2, True), (5, False)])
def test_detectron_pickle_loads_into_every_backbone_and_fpn_parameter(tmp_path, protocol, wrapped):
    torch.manual_seed(0)
    model = build_backbone(_narrow_cfg("R-50-FPN"))
    params = dict(model.named_parameters())
    # frozen-BN affine terms are buffers here, but Detectron stores them (as _bn_s / _bn_b)
    params.update({k: v for k, v in model.named_buffers() if k.endswith((".weight", ".bias"))})
    pairs = _detectron_blob_names_and_targets(_R50_BLOCKS, fpn_levels=(2, 3, 4, 5))
    rng = np.random.default_rng(0)
    blobs = {name: rng.standard_normal(params[target].shape).astype(np.float32) for name, target in pairs.items()}
    blobs["fc1000_w"] = rng.standard_normal((10, 128)).astype(np.float32)  # ImageNet classifier: dropped
    blobs["res2_0_branch2a_w_momentum"] = np.zeros((1,), np.float32)  # optimizer state: dropped
    path = _write_pickle(tmp_path / "R-50.pkl", {"blobs": blobs} if wrapped else blobs, protocol)

    loaded = load_c2_format(_narrow_cfg("R-50-FPN"), path)["model"]
    assert len(loaded) == len(pairs)
    matches = _suffix_match(params, loaded)
    # every conv and normalization weight of body and FPN is covered, by exactly the right blob
    assert set(matches) == {k for k in params if not k.endswith(("running_mean", "running_var"))}
    for blob_name, target in pairs.items():
        np.testing.assert_array_equal(loaded[matches[target]].numpy(), blobs[blob_name])


def test_detectron_pickle_for_a_retinanet_pyramid_and_dcn_stages(tmp_path):
    cfg = _narrow_cfg("R-50-FPN-RETINANET")
    cfg.MODEL.RESNETS.STAGE_WITH_DCN = (False, False, True, True)
    model = build_backbone(cfg)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    shapes.update({k.replace(".conv2.conv.", ".conv2."): v for k, v in shapes.items()})
    pairs = _detectron_blob_names_and_targets(_R50_BLOCKS, fpn_levels=(3, 4, 5))
    pairs.update({"fpn_6_w": "fpn.top_blocks.p6.weight", "fpn_7_b": "fpn.top_blocks.p7.bias"})
    blobs = {name: np.full(shapes[target], i, np.float32) for i, (name, target) in enumerate(pairs.items())}
    loaded = load_c2_format(cfg, _write_pickle(tmp_path / "retina.pkl", {"blobs": blobs}, 2))["model"]
    matches = _suffix_match(shapes, loaded)
    assert matches["body.layer3.0.conv2.conv.weight"] == "layer3.0.conv2.conv.weight"
    assert matches["body.layer2.0.conv2.weight"] == "layer2.0.conv2.weight"
    assert matches["fpn.fpn_inner2.weight"] == "fpn_inner2.weight"
    assert matches["fpn.top_blocks.p6.weight"] == "top_blocks.p6.weight"
    model.load_state_dict({k: loaded[v] for k, v in matches.items()}, strict=False)
    assert torch.equal(model.fpn.fpn_inner2.weight, torch.from_numpy(blobs["fpn_inner_res3_3_sum_lateral_w"]))


def test_detectron_pickle_of_another_depth_is_refused(tmp_path):
    blobs = {"res4_22_branch2a_w": np.zeros((4, 4, 1, 1), np.float32), "conv1_w": np.zeros((8, 3, 7, 7), np.float32)}
    path = _write_pickle(tmp_path / "R-101.pkl", {"blobs": blobs}, 2)
    with pytest.raises(ValueError, match=r"R-101\.pkl.*res4_22.*res4_5"):
        load_c2_format(_narrow_cfg("R-50-C4"), path)


class _RunsCode:
    """Pickles into a call of os.mkdir: what a malicious weights file would do."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (self.target,))


def test_malicious_pickle_is_refused_without_running_it(tmp_path):
    marker = str(tmp_path / "was_executed")
    path = _write_pickle(tmp_path / "evil.pkl", {"blobs": {"conv1_w": _RunsCode(marker)}}, 2)
    with pytest.raises(UnsafePickleError, match=r"evil\.pkl.*mkdir"):
        load_c2_format(_narrow_cfg("R-50-C4"), path)
    assert not os.path.exists(marker)


def test_unreadable_or_foreign_files_are_named(tmp_path):
    garbage = tmp_path / "garbage.pkl"
    garbage.write_bytes(b"definitely not a pickle")
    with pytest.raises(ValueError, match="garbage.pkl"):
        load_c2_format(_narrow_cfg("R-50-C4"), str(garbage))
    a_list = _write_pickle(tmp_path / "list.pkl", [np.zeros(3)], 2)
    with pytest.raises(ValueError, match="list.pkl.*list"):
        load_c2_format(_narrow_cfg("R-50-C4"), a_list)
    unknown = _write_pickle(tmp_path / "unknown.pkl", {"blobs": {"foo_w": np.zeros(3, np.float32)}}, 2)
    with pytest.raises(ValueError, match="unknown.pkl"):
        load_c2_format(_narrow_cfg("R-50-C4"), unknown)
    cfg = _narrow_cfg("R-50-C4")
    cfg.MODEL.BACKBONE.CONV_BODY = "VGG-16"
    with pytest.raises(KeyError, match="CONV_BODY='VGG-16'"):
        load_c2_format(cfg, unknown)
