"""Guided loss scaling and optimal bias initialisation against the paper's formulas."""
import json
import math
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from maskrcnn_benchmark.config import cfg as default_cfg
from maskrcnn_benchmark.modeling.sampling_free import (
    GuidedLossScaler,
    SamplingFreeHead,
    measure_and_apply_optimal_bias,
    prior_to_bias,
    sigmoid_prior_from_counts,
    softmax_bias_from_counts,
    stage_settings,
)
from maskrcnn_benchmark.modeling.sampling_free.bias_init import count_over_dataset, sample_indices
from maskrcnn_benchmark.structures.bounding_box import BoxList


def _losses(cls_value=2.0, loc_value=0.5):
    theta_cls = torch.tensor(cls_value, dtype=torch.float64, requires_grad=True)
    theta_loc = torch.tensor(loc_value, dtype=torch.float64, requires_grad=True)
    return theta_cls, theta_loc, theta_cls * 1.0, theta_loc * 1.0


def test_guided_value_and_gradients_match_eq_23_24():
    scaler = GuidedLossScaler("retina", mode="guided").double()
    with torch.no_grad():
        scaler.delta.fill_(1.7)
    theta_cls, theta_loc, loss_cls, loss_loc = _losses(2.0, 0.5)
    scaled, extras = scaler(loss_cls, loss_loc)
    total = loss_loc + scaled + extras["loss_retina_log_delta"]
    total.backward()

    g, delta = 0.5 / 2.0, 1.7
    assert total.item() == pytest.approx(0.5 + g * delta * 2.0 - math.log(delta))
    # g is a constant: dL/dL_cls = g * delta, and L_loc's gradient is 1 (none flows back through g)
    assert theta_cls.grad.item() == pytest.approx(g * delta)
    assert theta_loc.grad.item() == pytest.approx(1.0)
    # dL/d delta = g * L_cls - 1 / delta
    assert scaler.delta.grad.item() == pytest.approx(g * 2.0 - 1.0 / delta)
    assert extras["sf_retina_g"].item() == pytest.approx(g)
    assert extras["sf_retina_delta"].item() == pytest.approx(delta)


def test_guided_starts_with_delta_one_and_scaled_cls_equal_to_loc():
    scaler = GuidedLossScaler("rpn", mode="guided")
    assert scaler.delta.item() == 1.0
    assert "delta" in dict(scaler.named_parameters())
    scaled, _ = scaler(torch.tensor(8.0), torch.tensor(0.25))
    assert scaled.item() == pytest.approx(0.25)


def test_none_mode_is_the_baseline_or_a_fixed_scale():
    loss_cls, loss_loc = torch.tensor(3.0, requires_grad=True), torch.tensor(1.0)
    scaled, extras = GuidedLossScaler("roi")(loss_cls, loss_loc)
    assert scaled is loss_cls
    assert not any(k.startswith("loss") for k in extras)
    scaled, _ = GuidedLossScaler("roi", fixed_scale=0.1)(loss_cls, loss_loc)
    assert scaled.item() == pytest.approx(0.3)
    assert list(GuidedLossScaler("roi").parameters()) == []


def test_ratio_mode_has_no_delta_and_gradient_g():
    scaler = GuidedLossScaler("fcos", mode="ratio")
    assert list(scaler.parameters()) == []
    theta_cls, _, loss_cls, loss_loc = _losses(4.0, 1.0)
    scaled, extras = scaler(loss_cls, loss_loc)
    scaled.backward()
    assert theta_cls.grad.item() == pytest.approx(0.25)
    assert not any(k.startswith("loss") for k in extras)


def test_ratio_warmup_mean_uses_the_warmup_average_afterwards():
    scaler = GuidedLossScaler("atss", mode="ratio_warmup_mean", ratio_warmup_iters=3)
    ratios = []
    for loc in (1.0, 2.0, 3.0, 10.0, 20.0):
        _, extras = scaler(torch.tensor(1.0), torch.tensor(loc))
        ratios.append(extras["sf_atss_g"].item())
    assert ratios[:3] == pytest.approx([1.0, 2.0, 3.0])
    assert ratios[3:] == pytest.approx([2.0, 2.0])
    # the frozen state is part of the state dict, so a resumed run continues with it
    restored = GuidedLossScaler("atss", mode="ratio_warmup_mean", ratio_warmup_iters=3)
    restored.load_state_dict(scaler.state_dict())
    _, extras = restored(torch.tensor(1.0), torch.tensor(99.0))
    assert extras["sf_atss_g"].item() == pytest.approx(2.0)


def test_batch_without_foreground_gives_a_finite_loss():
    scaler = GuidedLossScaler("paa", mode="guided")
    # no foreground: L_loc is 0; before any usable batch the classifier weight is 0, later the last ratio
    scaled, extras = scaler(torch.tensor(5.0), torch.tensor(0.0))
    assert torch.isfinite(scaled) and scaled.item() == 0.0
    scaler(torch.tensor(2.0), torch.tensor(1.0))
    scaled, extras = scaler(torch.tensor(4.0), torch.tensor(0.0))
    assert scaled.item() == pytest.approx(0.5 * 4.0)
    assert torch.isfinite(extras["loss_paa_log_delta"])


def test_unknown_mode_and_bad_scale_are_named():
    with pytest.raises(ValueError, match="'rpn'.*'half'"):
        GuidedLossScaler("rpn", mode="half")
    with pytest.raises(ValueError, match="LOSS_SCALE"):
        GuidedLossScaler("rpn", fixed_scale=0.0)


def test_scaler_built_from_config_stage():
    cfg = default_cfg.clone()
    cfg.MODEL.SAMPLING_FREE.ROI.GUIDED = "guided"
    cfg.MODEL.SAMPLING_FREE.RATIO_WARMUP_ITERS = 7
    scaler = GuidedLossScaler.from_settings("roi", stage_settings(cfg, "ROI"))
    assert scaler.mode == "guided" and scaler.ratio_warmup_iters == 7
    assert GuidedLossScaler.from_settings("rpn", stage_settings(cfg, "RPN")).mode == "none"


def test_prior_to_bias_inverts_the_sigmoid_and_matches_eq_19():
    for pi in (1e-2, 1e-5, 0.3):
        assert torch.sigmoid(torch.tensor(prior_to_bias(pi), dtype=torch.float64)).item() == pytest.approx(pi)
    n, n_fg = 100000.0, 7.0
    assert prior_to_bias(sigmoid_prior_from_counts([n, n_fg])) == pytest.approx(-math.log(n / n_fg - 1))
    with pytest.raises(ValueError, match="N\\^f=0"):
        sigmoid_prior_from_counts([10.0, 0.0])


def test_softmax_bias_reproduces_class_frequencies():
    counts = torch.tensor([900.0, 60.0, 40.0, 0.0])
    probs = torch.softmax(softmax_bias_from_counts(counts), dim=0)
    expected = counts.clamp(min=0.5) / counts.clamp(min=0.5).sum()
    assert torch.allclose(probs, expected.double())


class _CountingHead(SamplingFreeHead):
    """A sigmoid head whose sample counts are known: every pixel is a sample, one per box is fg."""

    def __init__(self, settings):
        super().__init__("toy", settings, "sigmoid", num_classes=3)
        self.cls_logits = nn.Conv2d(4, 3, 1)
        self.calls = 0

    def labels_for_counting(self, target, image_size):
        self.calls += 1
        height, width = image_size
        labels = torch.zeros(height * width, dtype=torch.int64)
        labels[: len(target)] = 1
        return labels

    def classification_layer(self):
        return self.cls_logits


def _target(size, num_boxes, offset=0.0):
    boxes = torch.tensor([[offset + i, 0.0, offset + i + 1.0, 1.0] for i in range(num_boxes)]).reshape(-1, 4)
    target = BoxList(boxes, size)
    target.add_field("labels", torch.ones(num_boxes, dtype=torch.int64))
    return target


class _ToyDataset:
    def __init__(self, sizes_and_boxes):
        self.items = sizes_and_boxes

    def __len__(self):
        return len(self.items)

    def __getitem__(self, idx):
        (width, height), boxes = self.items[idx][:2]
        offset = self.items[idx][2] if len(self.items[idx]) > 2 else 0.0
        return None, _target((width, height), boxes, offset), idx


TOY_ITEMS = [((10, 20), 2), ((30, 10), 1), ((5, 5), 4), ((7, 8), 3)]


def _toy_cfg(tmp_path, sample_images=3, bias_init="optimal"):
    cfg = default_cfg.clone()
    cfg.OUTPUT_DIR = str(tmp_path)
    cfg.MODEL.SAMPLING_FREE.ONE_STAGE.BIAS_INIT = bias_init
    cfg.MODEL.SAMPLING_FREE.SAMPLE_IMAGES = sample_images
    return cfg


def _toy_model(cfg):
    return nn.Sequential(_CountingHead(stage_settings(cfg, "ONE_STAGE")))


def _toy_setup(tmp_path, sample_images=3, bias_init="optimal"):
    cfg = _toy_cfg(tmp_path, sample_images, bias_init)
    return cfg, _toy_model(cfg), _ToyDataset(list(TOY_ITEMS))


def test_measure_apply_and_cache_optimal_bias(tmp_path):
    cfg, model, dataset = _toy_setup(tmp_path, sample_images=3)
    chosen = sample_indices(len(dataset), 3, cfg.SEED)
    n = sum(dataset.items[i][0][0] * dataset.items[i][0][1] * 3.0 for i in chosen)
    n_fg = sum(dataset.items[i][1] for i in chosen)

    applied = measure_and_apply_optimal_bias(cfg, model, dataset)
    head = model[0]
    expected_bias = -math.log(n / n_fg - 1)
    assert applied["toy"]["pi"] == pytest.approx(n_fg / n)
    assert torch.allclose(head.cls_logits.bias, torch.full((3,), expected_bias))
    assert head.calls == 3

    with open(tmp_path / "sampling_free_counts.json") as handle:
        assert list(json.load(handle).values())[0]["toy"] == pytest.approx([n, n_fg])
    # a second start reads the cache instead of counting again
    fresh = _toy_model(cfg)
    measure_and_apply_optimal_bias(cfg, fresh, dataset)
    assert fresh[0].calls == 0
    assert torch.allclose(fresh[0].cls_logits.bias, head.cls_logits.bias)


def test_default_bias_init_leaves_heads_alone(tmp_path):
    cfg, model, dataset = _toy_setup(tmp_path, bias_init="default")
    assert measure_and_apply_optimal_bias(cfg, model, dataset) == {}
    assert model[0].calls == 0


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _count_in_group(rank, world_size, port, result_file):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    dataset = _ToyDataset([((10, 20), 2), ((30, 10), 1), ((5, 5), 4), ((7, 8), 3), ((9, 9), 1)])
    totals = count_over_dataset([_toy_model(default_cfg)[0]], dataset, list(range(5)), rank, world_size)
    if rank == 0:
        torch.save(totals[0], result_file)
    dist.destroy_process_group()


def test_counts_are_all_reduced_across_ranks(tmp_path):
    result_file = str(tmp_path / "counts.pt")
    mp.spawn(_count_in_group, args=(2, _free_port(), result_file), nprocs=2, join=True)
    dataset = _ToyDataset([((10, 20), 2), ((30, 10), 1), ((5, 5), 4), ((7, 8), 3), ((9, 9), 1)])
    single = count_over_dataset([_toy_model(default_cfg)[0]], dataset, list(range(5)))[0]
    assert torch.equal(torch.load(result_file, weights_only=True), single)
