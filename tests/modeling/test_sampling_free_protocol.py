"""The Sampling-Free head protocol: stage settings and their validation, the counting template,
the bias setting in both forms, isinstance discovery of heads, and the count cache keyed by data."""
import json
import math
import os
import re

import pytest
import torch
from torch import nn

from maskrcnn_benchmark.config import cfg as default_cfg
from maskrcnn_benchmark.modeling.detector import build_detection_model
from maskrcnn_benchmark.modeling.sampling_free import (
    SamplingFreeHead,
    StageSettings,
    check_sampling_free_config,
    classification_grad_norms,
    measure_and_apply_optimal_bias,
    stage_settings,
)
from maskrcnn_benchmark.modeling.sampling_free.bias_init import CACHE_FILE, optimal_bias_heads
from maskrcnn_benchmark.structures.bounding_box import BoxList

from helpers import shapes_cfg


def config(*options):
    cfg = default_cfg.clone()
    cfg.merge_from_list(list(options))
    return cfg


# ---------------------------------------------------------------- stage settings
def test_legacy_keys_give_the_strategies_they_always_meant():
    default = check_sampling_free_config(config())
    assert (default["RPN"].hard, default["RPN"].soft) == ("biased", "ce")
    assert (default["ROI"].hard, default["ROI"].soft) == ("biased", "ce")
    assert (default["ONE_STAGE"].hard, default["ONE_STAGE"].soft) == ("all", "focal")
    assert (default["RPN"].batch_size_per_image, default["RPN"].positive_fraction) == (256, 0.5)
    assert (default["ROI"].batch_size_per_image, default["ROI"].positive_fraction) == (512, 0.25)
    assert default["ONE_STAGE"].batch_size_per_image is None

    sampling_free = check_sampling_free_config(config(
        "MODEL.SAMPLING_FREE.RPN.SAMPLER", False, "MODEL.SAMPLING_FREE.ROI.SAMPLER", False,
        "MODEL.SAMPLING_FREE.ONE_STAGE.CLS_LOSS", "ce"))
    assert sampling_free["RPN"].hard == sampling_free["ROI"].hard == "all"
    assert sampling_free["ONE_STAGE"].soft == "ce"


def test_explicit_hard_and_soft_keys_agree_with_or_replace_the_legacy_ones():
    settings = check_sampling_free_config(config(
        "MODEL.SAMPLING_FREE.RPN.HARD", "all", "MODEL.SAMPLING_FREE.ROI.HARD", "all",
        "MODEL.SAMPLING_FREE.ROI.SAMPLER", False, "MODEL.SAMPLING_FREE.ONE_STAGE.SOFT", "ce"))
    assert settings["RPN"].hard == settings["ROI"].hard == "all" and settings["ONE_STAGE"].soft == "ce"


@pytest.mark.parametrize("options, keys", [
    (("MODEL.SAMPLING_FREE.RPN.HARD", "biased", "MODEL.SAMPLING_FREE.RPN.SAMPLER", False),
     (r"MODEL\.SAMPLING_FREE\.RPN\.HARD", r"MODEL\.SAMPLING_FREE\.RPN\.SAMPLER")),
    (("MODEL.SAMPLING_FREE.ROI.HARD", "biased", "MODEL.SAMPLING_FREE.ROI.SAMPLER", False),
     (r"MODEL\.SAMPLING_FREE\.ROI\.HARD", r"MODEL\.SAMPLING_FREE\.ROI\.SAMPLER")),
    (("MODEL.SAMPLING_FREE.ONE_STAGE.SOFT", "focal", "MODEL.SAMPLING_FREE.ONE_STAGE.CLS_LOSS", "ce"),
     (r"MODEL\.SAMPLING_FREE\.ONE_STAGE\.SOFT", r"MODEL\.SAMPLING_FREE\.ONE_STAGE\.CLS_LOSS")),
])
def test_a_contradiction_between_new_and_legacy_keys_names_both(options, keys):
    with pytest.raises(ValueError) as error:
        check_sampling_free_config(config(*options))
    for key in keys:
        assert re.search(key, str(error.value)), str(error.value)


BAD_VALUES = [
    (stage, key, value)
    for stage in ("ONE_STAGE", "RPN", "ROI")
    for key, value in (("HARD", "ohm"), ("SOFT", "focul"), ("BIAS_INIT", "optimla"), ("GUIDED", "guide"))
] + [("ONE_STAGE", "CLS_LOSS", "bce")]


@pytest.mark.parametrize("stage, key, value", BAD_VALUES, ids=lambda v: str(v))
def test_a_bad_value_of_any_stage_key_stops_the_build_naming_key_and_value(stage, key, value):
    # A Faster R-CNN does not use the ONE_STAGE keys, and still may not carry a typo in them.
    cfg = shapes_cfg("faster_rcnn_R_18_FPN_shapes.yaml", options=[f"MODEL.SAMPLING_FREE.{stage}.{key}", value])
    with pytest.raises((ValueError, KeyError)) as error:
        build_detection_model(cfg)
    message = str(error.value)
    assert f"MODEL.SAMPLING_FREE.{stage}.{key}" in message and repr(value) in message, message


def test_stage_settings_reject_values_the_config_cannot_check():
    with pytest.raises(ValueError, match=r"MODEL\.SAMPLING_FREE\.RPN\.LOSS_SCALE must be > 0"):
        StageSettings(stage="RPN", hard="biased", soft="ce", loss_scale=0.0)
    with pytest.raises(ValueError, match="unknown stage 'TWO_STAGE'"):
        stage_settings(config(), "TWO_STAGE")
    assert stage_settings(config(), "ONE_STAGE", focal_gamma=1.0).focal_gamma == 1.0


# ---------------------------------------------------------------- the protocol
class ListedHead(SamplingFreeHead):
    """A head whose assignment is a given list of labels per image (one sample per label)."""

    def __init__(self, kind, num_classes, labels_by_size, bias_init="optimal", name="listed"):
        settings = StageSettings(stage="ROI" if kind == "softmax" else "ONE_STAGE",
                                 hard="all", soft="ce", bias_init=bias_init)
        super().__init__(name, settings, kind, num_classes)
        outputs = num_classes + 1 if kind == "softmax" else 2 * num_classes
        self.cls_logits = nn.Linear(3, outputs)
        self.labels_by_size = labels_by_size

    def labels_for_counting(self, target, image_size):
        return torch.tensor(self.labels_by_size[tuple(image_size)], dtype=torch.int64)

    def classification_layer(self):
        return self.cls_logits


def test_sigmoid_counts_are_binary_problems_per_class_and_set_every_bias():
    head = ListedHead("sigmoid", 3, {(4, 4): [0, 0, 2, -1, 1, 0], (2, 2): [0, -1]})
    counts = head.count_samples([None, None], [(4, 4), (2, 2)])
    # valid samples (5 + 1) x 3 classes, 2 foreground samples
    assert counts.dtype == torch.float64 and counts.tolist() == [18.0, 2.0]
    info = head.set_bias_from_counts(counts)
    assert info["pi"] == pytest.approx(2 / 18)
    torch.testing.assert_close(head.cls_logits.bias, torch.full((6,), -math.log(8.0)))


def test_softmax_counts_per_class_and_set_the_class_frequencies():
    head = ListedHead("softmax", 3, {(4, 4): [0, 0, 2, -1, 3, 0, 2]})
    counts = head.count_samples([None], [(4, 4)])
    assert counts.tolist() == [3.0, 0.0, 2.0, 1.0]
    head.set_bias_from_counts(counts)
    expected = torch.tensor([3.0, 0.5, 2.0, 1.0], dtype=torch.float64)  # unseen class: half a count
    torch.testing.assert_close(torch.softmax(head.cls_logits.bias.double(), 0), expected / expected.sum())
    with pytest.raises(ValueError, match="5 class counts for a classifier with 4 outputs"):
        head.set_bias_from_counts(torch.ones(5))


def test_scaled_losses_scale_only_the_classification_loss_and_merge_the_extras():
    settings = StageSettings(stage="RPN", hard="all", soft="ce", guided="guided")
    head = SamplingFreeHead("rpn", settings, "sigmoid", 1)
    losses = head.scaled_losses("loss_objectness", torch.tensor(4.0), "loss_rpn_box_reg", torch.tensor(0.5),
                                loss_other=torch.tensor(7.0))
    assert list(losses)[:3] == ["loss_objectness", "loss_rpn_box_reg", "loss_other"]
    assert losses["loss_objectness"].item() == pytest.approx(0.5)  # g * delta * L_cls with delta = 1
    assert losses["loss_other"].item() == 7.0 and losses["loss_rpn_log_delta"].item() == 0.0
    assert losses["sf_rpn_g"].item() == pytest.approx(0.125)


class DuckTypedHead(nn.Module):
    """Has the protocol's method names but is not a SamplingFreeHead: not a head."""

    sampling_free_name = "duck"

    def __init__(self):
        super().__init__()
        self.cls_logits = nn.Linear(2, 2)

    def count_samples(self, targets, image_sizes):
        raise AssertionError("a duck-typed module must not be counted")

    def classification_layer(self):
        return self.cls_logits


def test_heads_are_found_by_class_at_any_depth_and_only_when_they_ask_for_the_optimal_bias():
    asking = ListedHead("sigmoid", 1, {}, name="asking")
    model = nn.ModuleDict({"a": nn.Sequential(DuckTypedHead(), asking),
                           "b": ListedHead("sigmoid", 1, {}, bias_init="default", name="default")})
    assert optimal_bias_heads(model) == [asking]
    for parameter in model.parameters():
        parameter.grad = torch.ones_like(parameter)
    # both real heads report their gradient norm (6 weights and 2 biases, all 1); the duck does not
    assert classification_grad_norms(model) == {"sf_asking_cls_grad_norm": pytest.approx(math.sqrt(8)),
                                                "sf_default_cls_grad_norm": pytest.approx(math.sqrt(8))}


# ---------------------------------------------------------------- the count cache
class BoxCountingHead(ListedHead):
    """Per image: one sample per pixel, the first ``len(target)`` of them foreground."""

    def __init__(self):
        super().__init__("sigmoid", 2, {})
        self.calls = 0

    def labels_for_counting(self, target, image_size):
        self.calls += 1
        labels = torch.zeros(image_size[0] * image_size[1], dtype=torch.int64)
        labels[: len(target)] = 1
        return labels


class BoxesDataset(torch.utils.data.Dataset):
    """Targets only (the counts never look at the image), from a list of per-image box lists."""

    def __init__(self, boxes_per_image, size=(20, 10)):
        self.boxes_per_image, self.size = boxes_per_image, size

    def __len__(self):
        return len(self.boxes_per_image)

    def __getitem__(self, idx):
        target = BoxList(torch.tensor(self.boxes_per_image[idx], dtype=torch.float32).reshape(-1, 4), self.size)
        target.add_field("labels", torch.ones(len(target), dtype=torch.int64))
        return None, target, idx


def test_the_count_cache_follows_the_data_not_only_the_dataset_name(tmp_path):
    cfg = config("OUTPUT_DIR", str(tmp_path), "MODEL.SAMPLING_FREE.SAMPLE_IMAGES", 2)
    original = BoxesDataset([[[0, 0, 5, 5]], [[1, 1, 4, 4], [5, 5, 9, 9]]])
    head = BoxCountingHead()
    measure_and_apply_optimal_bias(cfg, head, original)
    assert head.calls == 2
    pixels = 2 * 20 * 10 * 2.0  # two images of 20 x 10 samples, two classes each
    assert head.set_bias_from_counts(torch.tensor([pixels, 3.0]))["pi"] == pytest.approx(3 / pixels)

    # the same data again: read from the cache, no count
    again = BoxCountingHead()
    measure_and_apply_optimal_bias(cfg, again, BoxesDataset([[[0, 0, 5, 5]], [[1, 1, 4, 4], [5, 5, 9, 9]]]))
    assert again.calls == 0
    torch.testing.assert_close(again.cls_logits.bias, head.cls_logits.bias)

    # the annotation file changed (same dataset name, same config): one box moved, one added
    edited = BoxCountingHead()
    applied = measure_and_apply_optimal_bias(
        cfg, edited, BoxesDataset([[[0, 0, 6, 5], [2, 2, 3, 3]], [[1, 1, 4, 4], [5, 5, 9, 9]]]))
    assert edited.calls == 2
    assert applied["listed"]["pi"] == pytest.approx(4 / pixels)
    with open(tmp_path / CACHE_FILE) as handle:
        assert sorted(counts["listed"] for counts in json.load(handle).values()) == [[pixels, 3.0], [pixels, 4.0]]


def test_strategy_options_come_from_the_yaml_and_an_undeclared_one_is_named(tmp_path):
    from maskrcnn_benchmark.config import cfg as global_cfg

    path = tmp_path / "options.yaml"
    path.write_text("MODEL:\n  SAMPLING_FREE:\n    ROI:\n      HARD_OPTIONS:\n        NUM_BINS: 3\n"
                    "        FLOORS: [0.0, 0.1]\n")
    cfg = global_cfg.clone()
    cfg.merge_from_file(str(path))
    settings = stage_settings(cfg, "ROI")
    assert settings.options("HARD", {"NUM_BINS": 1, "FLOORS": (), "OTHER": 7}) == {
        "NUM_BINS": 3, "FLOORS": (0.0, 0.1), "OTHER": 7}
    assert stage_settings(cfg, "RPN").hard_options == ()
    # "biased" has no parameters: the build stops and names the key
    cfg.merge_from_file(os.path.join(os.path.dirname(__file__), "..", "..", "configs", "shapes",
                                     "faster_rcnn_R_18_FPN_shapes.yaml"))
    with pytest.raises(KeyError, match=r"MODEL\.SAMPLING_FREE\.ROI\.HARD_OPTIONS\.FLOORS: 'biased' has no such"):
        build_detection_model(cfg)
