"""The benchmark scripts run end to end at a tiny size and report what they claim to.

No timing is asserted (the numbers are machine- and load-dependent); what is checked is that every
model row is there with finite positive numbers, that the two sides of each comparison really are
configured alike, and that bad options are refused with a message naming them.
"""
import importlib
import json
import math
import os
import sys

import pytest
import torch

BENCHMARKS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "benchmarks")
sys.path.insert(0, BENCHMARKS_DIR)

common = importlib.import_module("common")
train_step = importlib.import_module("train_step")
inference = importlib.import_module("inference")

TINY = dict(
    device="cpu",
    image_size=64,
    batch=1,
    iters=1,
    warmup=0,
    rpn_pre_nms_top_n_train=100,
    rpn_post_nms_top_n_train=50,
    rpn_pre_nms_top_n_test=50,
    rpn_post_nms_top_n_test=20,
    rpn_batch_size_per_image=32,
    roi_batch_size_per_image=16,
)


def tiny_settings(**changes):
    return common.BenchSettings(**{**TINY, **changes}).validate()


def assert_positive_finite(value, what):
    assert value is not None, f"{what} is missing"
    assert math.isfinite(value) and value > 0, f"{what} = {value}"


def table_rows(table):
    """The first cells of a markdown table's body rows."""
    lines = table.strip().splitlines()
    assert lines[1].startswith("|---")
    return [line.strip("|").split("|")[0].strip() for line in lines[2:]]


@pytest.mark.slow
def test_train_step_vs_torchvision_all_models(tmp_path):
    torch.set_num_threads(1)
    settings = tiny_settings()
    rows = train_step.benchmark_vs_torchvision(settings, list(common.MODEL_NAMES))

    assert [row["model"] for row in rows] == list(common.MODEL_NAMES)
    for row in rows:
        for side in ("ours", "torchvision"):
            assert_positive_finite(row[side]["step_ms"], f"{row['model']} {side} step_ms")
            assert_positive_finite(row[side]["peak_mib"], f"{row['model']} {side} peak_mib")
            assert math.isfinite(row[side]["final_loss"])
        assert row["time_ratio"] == pytest.approx(row["ours"]["step_ms"] / row["torchvision"]["step_ms"])
        assert row["memory_ratio"] == pytest.approx(row["ours"]["peak_mib"] / row["torchvision"]["peak_mib"])
        # Same frozen stages and head sizes: the trainable parameter counts agree to within the
        # few per-layer differences of the two code bases (well under 1%).
        ours, theirs = row["ours"]["trainable_params"], row["torchvision"]["trainable_params"]
        assert abs(ours - theirs) / theirs < 0.01, (row["model"], ours, theirs)

    table = train_step.vs_torchvision_table(rows)
    assert table_rows(table) == [common.MODEL_TITLES[name] for name in common.MODEL_NAMES]
    assert "n/a" not in table


def test_sampling_free_vs_biased_row():
    torch.set_num_threads(1)
    result = train_step.benchmark_sampling_free(tiny_settings())
    for side in ("biased", "sampling_free"):
        assert_positive_finite(result[side]["step_ms"], f"{side} step_ms")
        assert_positive_finite(result[side]["peak_mib"], f"{side} peak_mib")
    assert_positive_finite(result["time_ratio"], "time_ratio")
    assert_positive_finite(result["memory_ratio"], "memory_ratio")
    # The Sampling-Free model owns a learnable delta per guided stage (RPN and RoI): two more
    # trainable scalars than the biased one, and otherwise the same network.
    assert result["sampling_free"]["trainable_params"] - result["biased"]["trainable_params"] == 2
    assert table_rows(train_step.sampling_free_table(result)) == ["ours"]


def test_sampling_free_config_switches_off_the_samplers():
    settings = tiny_settings()
    biased = common.our_config("faster_rcnn", settings)
    free = common.our_config("faster_rcnn", settings, sampling_free=True)
    assert biased.MODEL.SAMPLING_FREE.RPN.SAMPLER and biased.MODEL.SAMPLING_FREE.ROI.SAMPLER
    for stage in (free.MODEL.SAMPLING_FREE.RPN, free.MODEL.SAMPLING_FREE.ROI):
        assert (stage.SAMPLER, stage.BIAS_INIT, stage.GUIDED) == (False, "optimal", "guided")
    # Everything the comparison with torchvision fixes is the same in both.
    for cfg in (biased, free):
        assert cfg.MODEL.BACKBONE.FREEZE_CONV_BODY_AT == common.FREEZE_CONV_BODY_AT
        assert cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES == settings.num_classes
        assert cfg.MODEL.RPN.PRE_NMS_TOP_N_TRAIN == settings.rpn_pre_nms_top_n_train
        assert cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE == settings.roi_batch_size_per_image


def test_torchvision_model_is_configured_like_ours():
    from torchvision.ops.misc import FrozenBatchNorm2d

    settings = tiny_settings()
    model = common.build_torchvision("faster_rcnn", settings)
    norms = [m for m in model.backbone.body.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert norms == [], "torchvision's backbone must use frozen BatchNorm, as ours"
    assert any(isinstance(m, FrozenBatchNorm2d) for m in model.backbone.body.modules())
    body = model.backbone.body
    frozen = [name for name in ("conv1", "layer1") if not any(p.requires_grad for p in getattr(body, name).parameters())]
    trained = [name for name in ("layer2", "layer3", "layer4") if all(p.requires_grad for p in getattr(body, name).parameters())]
    assert frozen == ["conv1", "layer1"] and trained == ["layer2", "layer3", "layer4"]
    assert model.roi_heads.box_predictor.cls_score.out_features == settings.num_classes
    assert model.rpn._pre_nms_top_n["training"] == settings.rpn_pre_nms_top_n_train
    assert model.roi_heads.fg_bg_sampler.batch_size_per_image == settings.roi_batch_size_per_image

    retinanet = common.build_torchvision("retinanet", settings)
    # 9 anchors x 80 object classes, as our RetinaNet head with NUM_CLASSES 81 (background implicit).
    assert retinanet.head.classification_head.cls_logits.out_channels == 9 * (settings.num_classes - 1)


def test_both_roi_heads_see_the_same_number_of_proposals():
    # The shared post-NMS top-n reaches both RPNs, and with the default RPN NMS threshold (1.0)
    # nothing is suppressed: both RoI heads get exactly that many proposals per image.
    torch.set_num_threads(1)
    settings = tiny_settings()
    batch = common.make_batch(settings)
    ours = inference.our_predict("faster_rcnn", settings, batch)
    theirs = inference.torchvision_predict("faster_rcnn", settings, batch)
    seen = {}
    ours.model.roi_heads.box.feature_extractor.register_forward_hook(
        lambda module, args, out: seen.__setitem__("ours", out.shape[0])
    )
    theirs.model.roi_heads.box_head.register_forward_hook(
        lambda module, args, out: seen.__setitem__("torchvision", out.shape[0])
    )
    ours()
    theirs()
    assert seen == {"ours": settings.rpn_post_nms_top_n_test, "torchvision": settings.rpn_post_nms_top_n_test}


def test_synthetic_targets_agree_between_formats():
    settings = tiny_settings(batch=2)
    batch = common.make_batch(settings)
    ours = common.our_targets(batch, "mask_rcnn", "cpu")
    theirs = common.torchvision_targets(batch, "mask_rcnn", "cpu")
    for our_target, their_target in zip(ours, theirs):
        torch.testing.assert_close(our_target.bbox, their_target["boxes"])
        torch.testing.assert_close(our_target.get_field("labels"), their_target["labels"])
        # The polygon masks rasterise to the same filled boxes torchvision gets as bitmaps.
        rasterised = our_target.get_field("masks").get_mask_tensor().reshape(their_target["masks"].shape)
        torch.testing.assert_close(rasterised.to(torch.uint8), their_target["masks"])
        assert (their_target["labels"] >= 1).all() and (their_target["labels"] < settings.num_classes).all()
    retinanet_labels = common.torchvision_targets(batch, "retinanet", "cpu")[0]["labels"]
    torch.testing.assert_close(retinanet_labels, batch.labels[0] - 1)


DETECTIONS_PER_IMAGE = 100  # both sides' cap (TEST.DETECTIONS_PER_IMG, detections_per_img)


@pytest.fixture
def no_score_threshold(monkeypatch):
    """Both sides' detectors with the score threshold at 0, so that every image returns its full
    DETECTIONS_PER_IMAGE boxes even with random weights (at the usual 0.05 an untrained head
    often returns none, and a detection count of 0 would prove nothing)."""
    our_config, build_torchvision = common.our_config, common.build_torchvision

    def our_config_without_threshold(*args, **kwargs):
        cfg = our_config(*args, **kwargs).clone()
        cfg.defrost()
        cfg.MODEL.ROI_HEADS.SCORE_THRESH = 0.0
        cfg.MODEL.RETINANET.INFERENCE_TH = 0.0
        cfg.freeze()
        return cfg

    def build_torchvision_without_threshold(*args, **kwargs):
        model = build_torchvision(*args, **kwargs)
        # Faster / Mask R-CNN keep the threshold in their RoI heads, RetinaNet in the model.
        getattr(model, "roi_heads", model).score_thresh = 0.0
        return model

    monkeypatch.setattr(common, "our_config", our_config_without_threshold)
    monkeypatch.setattr(common, "build_torchvision", build_torchvision_without_threshold)


def test_inference_all_models(no_score_threshold):
    torch.set_num_threads(1)
    settings = tiny_settings(batch=2)
    rows = inference.benchmark_inference(settings, list(common.MODEL_NAMES))
    assert [row["model"] for row in rows] == list(common.MODEL_NAMES)
    for row in rows:
        for side in ("ours", "torchvision"):
            assert_positive_finite(row[side]["images_per_s"], f"{row['model']} {side} images_per_s")
            # The reported count is the boxes of the whole batch, each image at its cap.
            assert row[side]["detections"] == settings.batch * DETECTIONS_PER_IMAGE, (row["model"], side)
        assert row["throughput_ratio"] == pytest.approx(
            row["ours"]["images_per_s"] / row["torchvision"]["images_per_s"]
        )
    table = inference.inference_table(rows)
    assert table_rows(table) == [common.MODEL_TITLES[name] for name in common.MODEL_NAMES]


def test_inference_cli_writes_json(tmp_path, capsys):
    torch.set_num_threads(1)
    out = tmp_path / "inference.json"
    inference.main(
        ["--image-size", "64", "--iters", "1", "--warmup", "0", "--models", "retinanet", "--json", str(out)]
    )
    printed = capsys.readouterr().out
    assert common.MODEL_TITLES["retinanet"] in printed
    payload = json.loads(out.read_text())
    assert payload["settings"]["image_size"] == 64
    assert [row["model"] for row in payload["inference"]] == ["retinanet"]
    assert_positive_finite(payload["inference"][0]["ours"]["images_per_s"], "images_per_s")


def test_non_square_images_reach_both_models_unresized():
    # The paper's Table III size is 800 x 1333; here a small non-square stand-in.
    settings = tiny_settings(image_size=64, image_width=96)
    batch = common.make_batch(settings)
    assert tuple(batch.images[0].shape) == (3, 64, 96)
    assert tuple(batch.masks[0].shape[1:]) == (64, 96)
    boxes = batch.boxes[0]
    assert (boxes[:, 2] <= 96).all() and (boxes[:, 3] <= 64).all() and (boxes[:, 0] >= 0).all()
    model = common.build_torchvision("faster_rcnn", settings).eval()
    images, _ = model.transform(batch.images)
    assert images.image_sizes == [(64, 96)]
    row = train_step.benchmark_sampling_free(settings)
    assert_positive_finite(row["time_ratio"], "time_ratio")


def test_cpu_peak_memory_counts_a_known_allocation():
    # A 4 MiB tensor held while a second 4 MiB one exists: the peak is 8 MiB above the start.
    def allocate():
        first = torch.ones(1024, 1024)
        second = first * 2
        return float(second[0, 0])

    peak = common.peak_memory_bytes(allocate, "cpu")
    assert peak == pytest.approx(8 * 2**20, rel=0.01)


@pytest.mark.parametrize(
    "changes, culprit",
    [
        (dict(device="tpu"), "device"),
        (dict(image_size=32), "image_size"),
        (dict(image_width=48), "image_width"),
        (dict(iters=0), "iters"),
        (dict(warmup=-1), "warmup"),
        (dict(rpn_nms_thresh=0.0), "rpn_nms_thresh"),
    ],
)
def test_bad_settings_name_the_culprit(changes, culprit):
    with pytest.raises(ValueError, match=culprit):
        tiny_settings(**changes)


def test_unknown_model_name_is_named():
    with pytest.raises(ValueError, match="mask_rcnnn"):
        common.parse_model_names("faster_rcnn,mask_rcnnn")


def test_missing_config_file_is_named(tmp_path):
    missing = str(tmp_path / "nope.yaml")
    settings = tiny_settings(config_files={**common.CONFIG_FILES, "faster_rcnn": missing})
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        common.our_config("faster_rcnn", settings)
