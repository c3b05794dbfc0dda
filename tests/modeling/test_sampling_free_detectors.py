"""The Sampling-Free switches on every detector, built with build_detection_model from the shapes
configs and run on images of the "shapes_train" catalog entry.

Each ablation switch of MODEL.SAMPLING_FREE must change exactly what it names:
- ONE_STAGE.CLS_LOSS focal -> ce: only the classification loss changes, and it is then the plain
  sigmoid BCE over every non-ignored sample divided by the number of foreground samples;
- RPN/ROI.SAMPLER True -> False: every anchor / proposal with a label >= 0 is trained instead of the
  256 / BATCH_SIZE_PER_IMAGE sampled ones, while the box loss (same positives, same divisor) stays;
- BIAS_INIT optimal: only the last classification bias moves, to -log(N / N^f - 1) for the counts
  the head reports (softmax RoI head: softmax(bias) = class frequencies);
- GUIDED guided: a learnable delta exists, is saved and optimised, and the head's loss terms sum to
  L_loc + g * delta * L_cls - log(delta) with g = L_loc / L_cls;
- LOSS_SCALE s: the classification loss is exactly s times its s = 1 value.
Plus: batches without any foreground stay finite in full Sampling-Free mode, the mask loss is never
touched, and classification_grad_norms reports every head.
"""
import importlib.util
import json
import math
from collections import namedtuple
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import box_iou, sigmoid_focal_loss

import maskrcnn_benchmark.modeling.sample_strategy.cross_entropy as cross_entropy_module
from maskrcnn_benchmark.modeling.detector import build_detection_model
from maskrcnn_benchmark.modeling.sampling_free import classification_grad_norms, measure_and_apply_optimal_bias
from maskrcnn_benchmark.modeling.sampling_free.bias_init import CACHE_FILE
from maskrcnn_benchmark.structures.box_convention import MASKRCNN_BENCHMARK
from maskrcnn_benchmark.structures.image_list import to_image_list

from helpers import images_and_targets, shapes_cfg

# One entry per Sampling-Free stage: which detector carries it, where its module and its last
# classification layer live, and its loss keys.
Stage = namedtuple("Stage", "config stage name module cls_layer cls_key loc_key")
STAGES = {
    "retinanet": Stage("retinanet_R-18-FPN_shapes.yaml", "ONE_STAGE", "retina", "rpn", "rpn.head.cls_logits",
                       "loss_retina_cls", "loss_retina_reg"),
    "fcos": Stage("fcos_R-18-FPN_shapes.yaml", "ONE_STAGE", "fcos", "rpn", "rpn.head.cls_logits",
                  "loss_cls", "loss_reg"),
    "atss": Stage("atss_R-18-FPN_shapes.yaml", "ONE_STAGE", "atss", "rpn", "rpn.head.cls_logits",
                  "loss_cls", "loss_reg"),
    "paa": Stage("paa_R-18-FPN_shapes.yaml", "ONE_STAGE", "paa", "rpn", "rpn.head.cls_logits",
                 "loss_cls", "loss_reg"),
    "rpn": Stage("faster_rcnn_R_18_FPN_shapes.yaml", "RPN", "rpn", "rpn", "rpn.head.cls_logits",
                 "loss_objectness", "loss_rpn_box_reg"),
    "roi": Stage("faster_rcnn_R_18_FPN_shapes.yaml", "ROI", "roi", "roi_heads.box", "roi_heads.box.predictor.cls_score",
                 "loss_classifier", "loss_box_reg"),
}
ONE_STAGE = ["retinanet", "fcos", "atss", "paa"]
NUM_FOREGROUND_CLASSES = 4  # the shapes dataset: square, circle, triangle, star


# The "shapes_train" split comes from conftest's shapes_train fixture.
pytestmark = pytest.mark.usefixtures("one_thread")


def load_cfg(detector, options=(), config=None):
    return shapes_cfg(config or STAGES[detector].config, options=options)


def stage_options(detector, **switches):
    """``MODEL.SAMPLING_FREE.<stage>.<KEY> value`` pairs for the stage of ``detector``."""
    prefix = "MODEL.SAMPLING_FREE.{}.".format(STAGES[detector].stage)
    options = []
    for key, value in switches.items():
        options += [prefix + key.upper(), value]
    return options


def build(cfg, weights_from=None, seed=0):
    """The detector in training mode; with ``weights_from`` it starts from that model's weights."""
    torch.manual_seed(seed)
    model = build_detection_model(cfg)
    if weights_from is not None:
        model.load_state_dict(weights_from.state_dict())
    return model.train()


def run(model, images, targets, seed=1):
    """One training forward; the seed fixes the biased samplers' random draws."""
    torch.manual_seed(seed)
    return model(images, targets)


def module_of(model, detector):
    return model.get_submodule(STAGES[detector].module)


def assert_same(a, b):
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def hand_bce_sum(logits, targets):
    """sum of -[t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))], in its overflow-free form."""
    return (logits.clamp(min=0) - logits * targets + torch.log1p(torch.exp(-logits.abs()))).sum()


def one_hot(labels, num_classes):
    """Column c is 1 where the label is foreground class c + 1 (labels: 0 background)."""
    return (labels[:, None] == torch.arange(1, num_classes + 1)[None, :]).to(torch.float32)


class Recorder:
    """Wraps a loss function and keeps (a detached copy of) what it was given."""

    def __init__(self, function):
        self.function = function
        self.calls = []

    def __call__(self, *args, **kwargs):
        self.calls.append([a.detach().clone() if torch.is_tensor(a) else a for a in args])
        return self.function(*args, **kwargs)

    def __getattr__(self, name):  # the wrapped strategy's attributes (e.g. normalises_itself)
        return getattr(self.function, name)


def record_one_stage_cls_loss(model):
    evaluator = model.rpn.loss_evaluator
    attribute = "box_cls_loss_func" if hasattr(evaluator, "box_cls_loss_func") else "cls_loss_func"
    recorder = Recorder(getattr(evaluator, attribute))
    setattr(evaluator, attribute, recorder)
    return recorder


# ---- CLS_LOSS: focal -> ce ------------------------------------------------------------------

@pytest.mark.parametrize("detector", ONE_STAGE)
def test_cls_loss_switch_changes_only_the_classification_loss(detector, shapes_train):
    spec = STAGES[detector]
    focal = build(load_cfg(detector, stage_options(detector, cls_loss="focal")))
    ce = build(load_cfg(detector, stage_options(detector, cls_loss="ce")), weights_from=focal)
    if detector == "paa":
        # PAA scores its candidate anchors with the configured classification loss, so the switch
        # also moves PAA's assignment; pin the scoring to focal to compare the rest like for like.
        assert ce.rpn.loss_evaluator.candidate_loss is ce.rpn.soft_strategy
        ce.rpn.loss_evaluator.candidate_loss = focal.rpn.soft_strategy
    focal_inputs, ce_inputs = record_one_stage_cls_loss(focal), record_one_stage_cls_loss(ce)
    images, targets = images_and_targets(shapes_train, (0, 1))
    focal_losses, ce_losses = run(focal, images, targets), run(ce, images, targets)

    assert focal_losses.keys() == ce_losses.keys()
    for key in focal_losses:
        if key.startswith("loss") and key != spec.cls_key:
            assert_same(ce_losses[key], focal_losses[key])
    assert not torch.isclose(ce_losses[spec.cls_key], focal_losses[spec.cls_key])

    (focal_logits, labels), (ce_logits, ce_labels) = focal_inputs.calls[0][:2], ce_inputs.calls[0][:2]
    assert_same(ce_logits, focal_logits)
    assert_same(ce_labels, labels)
    labels = labels.long()
    # The loss sees every sample of the batch (no sampling) ...
    with torch.no_grad():
        logits_per_level = ce.rpn.head(ce.backbone(to_image_list(images).tensors))[0]
    num_samples = sum(level.numel() for level in logits_per_level) // NUM_FOREGROUND_CLASSES
    assert ce_logits.shape == (num_samples, NUM_FOREGROUND_CLASSES)
    # ... and skips the ignored ones (labels < 0, RetinaNet's anchors between the IoU thresholds).
    valid = labels >= 0
    if detector == "retinanet":
        assert (~valid).sum() > 0
    num_foreground = max(int((labels > 0).sum()), 1)
    targets_01 = one_hot(labels[valid], NUM_FOREGROUND_CLASSES)

    expected_ce = hand_bce_sum(ce_logits[valid], targets_01) / num_foreground
    torch.testing.assert_close(ce_losses[spec.cls_key].detach(), expected_ce, rtol=1e-5, atol=0)
    head_cfg = load_cfg(detector).MODEL[{"retinanet": "RETINANET", "fcos": "FCOS", "atss": "ATSS", "paa": "PAA"}[detector]]
    expected_focal = sigmoid_focal_loss(focal_logits[valid], targets_01, alpha=head_cfg.LOSS_ALPHA,
                                        gamma=head_cfg.LOSS_GAMMA, reduction="sum") / num_foreground
    torch.testing.assert_close(focal_losses[spec.cls_key].detach(), expected_focal, rtol=1e-5, atol=0)


# ---- SAMPLER: biased sampler -> every valid sample --------------------------------------------

def reference_rpn_labels(anchors, target, image_size, fg_threshold=0.7, bg_threshold=0.3, drop_straddling=True,
                         convention=MASKRCNN_BENCHMARK):
    """Objectness labels (1 / 0 / -1) by the matching rule, from torchvision's IoU (of the boxes as
    continuous ones; the models use the default MODEL.BOX_CONVENTION): IoU >= 0.7 or the best anchor
    of a box is foreground, IoU < 0.3 background, anchors leaving the image ignored."""
    iou = box_iou(convention.to_continuous(target.bbox), convention.to_continuous(anchors))
    best_iou = iou.max(dim=0).values
    best_of_a_box = (iou == iou.max(dim=1, keepdim=True).values).any(dim=0)
    positive = (best_iou >= fg_threshold) | best_of_a_box
    negative = (best_iou < bg_threshold) & ~positive
    height, width = image_size
    inside = (anchors[:, 0] >= 0) & (anchors[:, 1] >= 0) & (anchors[:, 2] < width) & (anchors[:, 3] < height)
    if not drop_straddling:
        inside = torch.ones_like(inside)
    labels = torch.full((anchors.shape[0],), -1, dtype=torch.int64)
    labels[negative & inside] = 0
    labels[positive & inside] = 1
    return labels


def test_rpn_sampler_switch_trains_every_valid_anchor(shapes_train, monkeypatch):
    sampled = build(load_cfg("rpn", stage_options("rpn", sampler=True)))
    every = build(load_cfg("rpn", stage_options("rpn", sampler=False)), weights_from=sampled)
    images, targets = images_and_targets(shapes_train, (0, 1))
    image_list = to_image_list(images)
    with torch.no_grad():
        anchors = every.rpn.anchor_generator(image_list, every.backbone(image_list.tensors))
    reference = torch.cat([
        reference_rpn_labels(torch.cat([a.bbox for a in per_image]), target, size)
        for per_image, target, size in zip(anchors, targets, image_list.image_sizes)
    ])
    num_images = len(images)
    rpn_cfg = load_cfg("rpn").MODEL.RPN
    per_image = rpn_cfg.BATCH_SIZE_PER_IMAGE
    positive_cap = int(per_image * rpn_cfg.POSITIVE_FRACTION)

    recorded = {}
    for name, model in (("sampled", sampled), ("every", every)):
        recorder = Recorder(F.binary_cross_entropy_with_logits)
        monkeypatch.setattr(cross_entropy_module, "F", SimpleNamespace(binary_cross_entropy_with_logits=recorder,
                                                                       cross_entropy=F.cross_entropy))
        recorded[name] = (run(model, images, targets), recorder.calls[0])

    (sampled_losses, (_, sampled_labels)), (every_losses, (every_logits, every_labels)) = (
        recorded["sampled"], recorded["every"])
    # Baseline: 256 anchors per image; here every image has fewer than 128 positives, so all of them.
    split = torch.split(reference, len(reference) // num_images)
    assert all(int((r == 1).sum()) <= positive_cap and int((r == 0).sum()) >= per_image for r in split)
    assert sampled_labels.numel() == per_image * num_images
    assert int(sampled_labels.sum()) == int((reference == 1).sum())
    # Sampling-Free: every anchor with a label >= 0 -- ignored anchors (between the thresholds,
    # straddling the border) stay ignored, they are not counted as negatives.
    assert every_labels.numel() == int((reference >= 0).sum())
    assert int(every_labels.sum()) == int((reference == 1).sum())
    assert int((reference == -1).sum()) > 0
    # Its objectness loss is the BCE sum over them divided by the number of positives (eq. 13).
    expected = hand_bce_sum(every_logits, every_labels) / int((reference == 1).sum())
    torch.testing.assert_close(every_losses["loss_objectness"].detach(), expected, rtol=1e-5, atol=0)
    # Same positives, same divisor (the sampler's 256 per image): the box loss does not move.
    assert_same(every_losses["loss_rpn_box_reg"], sampled_losses["loss_rpn_box_reg"])


def run_box_head(model, images, targets, seed=1):
    """Backbone -> RPN -> box head as GeneralizedRCNN runs them; returns the proposals given to the
    box head, those it trained on, and its losses."""
    torch.manual_seed(seed)
    image_list = to_image_list(images)
    features = model.backbone(image_list.tensors)
    proposals, _ = model.rpn(image_list, features, targets)
    given = [p.copy_with_fields([]) for p in proposals]
    _, trained, losses = model.roi_heads.box(features, proposals, targets)
    return given, trained, losses


def test_roi_sampler_switch_trains_every_proposal(shapes_train, monkeypatch):
    sampled = build(load_cfg("roi", stage_options("roi", sampler=True)))
    every = build(load_cfg("roi", stage_options("roi", sampler=False)), weights_from=sampled)
    images, targets = images_and_targets(shapes_train, (0, 1))
    roi_cfg = load_cfg("roi").MODEL.ROI_HEADS
    per_image, positive_cap = roi_cfg.BATCH_SIZE_PER_IMAGE, int(roi_cfg.BATCH_SIZE_PER_IMAGE * roi_cfg.POSITIVE_FRACTION)

    results = {}
    for name, model in (("sampled", sampled), ("every", every)):
        recorder = Recorder(F.cross_entropy)
        monkeypatch.setattr(cross_entropy_module, "F", SimpleNamespace(
            cross_entropy=recorder, binary_cross_entropy_with_logits=F.binary_cross_entropy_with_logits))
        results[name] = run_box_head(model, images, targets) + (recorder.calls[0],)

    given, sampled_trained, sampled_losses, _ = results["sampled"]
    every_given, every_trained, every_losses, (logits, labels) = results["every"]
    for proposals, other in zip(given, every_given):
        assert_same(proposals.bbox, other.bbox)
    foreground = [int((box_iou(p.bbox, t.bbox).max(dim=1).values >= roi_cfg.FG_IOU_THRESHOLD).sum())
                  for p, t in zip(given, targets)]
    assert all(0 < f <= positive_cap for f in foreground)
    assert all(len(p) > per_image for p in given)
    # Baseline: BATCH_SIZE_PER_IMAGE proposals per image, holding every foreground one here.
    assert [len(t) for t in sampled_trained] == [per_image] * len(images)
    assert [int((t.get_field("labels") > 0).sum()) for t in sampled_trained] == foreground
    # Sampling-Free: every proposal (with the FG = BG threshold of 0.5 none is ignored).
    assert [len(t) for t in every_trained] == [len(p) for p in given]
    assert [int((t.get_field("labels") > 0).sum()) for t in every_trained] == foreground
    # Softmax CE summed over all of them, divided by the number of foreground proposals.
    hand_ce = (torch.logsumexp(logits, dim=1) - logits.gather(1, labels[:, None]).squeeze(1)).sum()
    torch.testing.assert_close(every_losses["loss_classifier"].detach(), hand_ce / sum(foreground),
                               rtol=1e-5, atol=0)
    # Same foreground proposals and the sampler's divisor: the box loss is unchanged.
    torch.testing.assert_close(every_losses["loss_box_reg"], sampled_losses["loss_box_reg"], rtol=1e-6, atol=0)


# ---- BIAS_INIT: optimal ------------------------------------------------------------------------

@pytest.mark.parametrize("detector", list(STAGES))
def test_optimal_bias_moves_only_the_last_classification_bias(detector, shapes_train, tmp_path):
    spec = STAGES[detector]
    cfg = load_cfg(detector, stage_options(detector, bias_init="optimal") + [
        "MODEL.SAMPLING_FREE.SAMPLE_IMAGES", 6, "OUTPUT_DIR", str(tmp_path)])
    model = build(cfg)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    applied = measure_and_apply_optimal_bias(cfg, model, shapes_train)

    assert list(applied) == [spec.name]
    bias_key = spec.cls_layer + ".bias"
    after = model.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed == [bias_key]

    with open(tmp_path / CACHE_FILE) as handle:
        (counts_by_head,) = json.load(handle).values()
    counts = counts_by_head[spec.name]
    bias = after[bias_key].double()
    if detector == "roi":
        # Softmax head: the initial class probabilities are the measured class frequencies.
        counts = torch.tensor(counts, dtype=torch.float64)
        assert counts.shape == (NUM_FOREGROUND_CLASSES + 1,) and bool((counts > 0).all())
        assert counts[0] > counts[1:].sum()  # background dominates
        torch.testing.assert_close(torch.softmax(bias, 0), counts / counts.sum(), rtol=1e-6, atol=1e-7)
    else:
        total, foreground = counts
        assert 0 < foreground < total
        expected = -math.log(total / foreground - 1.0)
        torch.testing.assert_close(bias, torch.full_like(bias, expected), rtol=1e-6, atol=1e-6)
        assert applied[spec.name]["pi"] == pytest.approx(foreground / total)


def test_optimal_bias_counts_match_torchvision_iou_for_the_rpn(shapes_train, tmp_path):
    """N and N^f of the RPN, recounted from the matching rule with torchvision's IoU."""
    model = build(load_cfg("rpn"))
    image_list = to_image_list(images_and_targets(shapes_train, (0,))[0])
    _, target, _ = shapes_train[0]
    with torch.no_grad():
        anchors = torch.cat([a.bbox for a in model.rpn.anchor_generator(
            image_list, model.backbone(image_list.tensors))[0]])
    reference = reference_rpn_labels(anchors, target, image_list.image_sizes[0])
    counts = model.rpn.count_samples([target], [image_list.image_sizes[0]])
    assert counts.tolist() == [int((reference >= 0).sum()), int((reference == 1).sum())]


def test_optimal_bias_counts_match_torchvision_iou_for_retinanet(shapes_train):
    """RetinaNet's N (valid anchors x classes: IoU >= 0.5, < 0.4 or best of a box; border-crossing
    anchors kept) and N^f (positive anchors), recounted with torchvision's IoU."""
    model = build(load_cfg("retinanet"))
    retina_cfg = load_cfg("retinanet").MODEL.RETINANET
    counts = torch.zeros(2, dtype=torch.float64)
    expected = [0, 0]
    for idx in (0, 1, 2):
        _, target, _ = shapes_train[idx]
        size = (target.size[1], target.size[0])
        counts += model.rpn.count_samples([target], [size])
        reference = reference_rpn_labels(torch.cat(model.rpn.positions_for_image_size(size)), target, size,
                                         retina_cfg.FG_IOU_THRESHOLD, retina_cfg.BG_IOU_THRESHOLD,
                                         drop_straddling=False)
        expected[0] += int((reference >= 0).sum()) * NUM_FOREGROUND_CLASSES
        expected[1] += int((reference == 1).sum())
    assert counts.tolist() == expected


# ---- GUIDED: guided ----------------------------------------------------------------------------

@pytest.mark.parametrize("detector", list(STAGES))
def test_guided_scaling_has_a_learnable_delta_and_follows_eq_23(detector, shapes_train):
    spec = STAGES[detector]
    guided = build(load_cfg(detector, stage_options(detector, guided="guided")))
    plain = build(load_cfg(detector, stage_options(detector, guided="none")))
    deltas = [name for name, _ in guided.named_parameters() if name.endswith("delta")]
    assert deltas == [spec.module + ".loss_scaler.delta"]
    (delta_name,) = deltas
    assert delta_name in guided.state_dict()
    incompatible = plain.load_state_dict(guided.state_dict(), strict=False)
    assert list(incompatible.unexpected_keys) == [delta_name] and not incompatible.missing_keys
    if importlib.util.find_spec("maskrcnn_benchmark.solver") is not None:
        from maskrcnn_benchmark.solver import make_optimizer

        optimizer = make_optimizer(load_cfg(detector, stage_options(detector, guided="guided")), guided)
        delta = guided.get_parameter(delta_name)
        assert any(p is delta for group in optimizer.param_groups for p in group["params"])

    delta_value = 1.3
    with torch.no_grad():
        guided.get_parameter(delta_name).fill_(delta_value)
    images, targets = images_and_targets(shapes_train, (0, 1))
    guided_losses, plain_losses = run(guided, images, targets), run(plain, images, targets)

    name = spec.name
    for key in ("loss_{}_log_delta".format(name), "sf_{}_g".format(name), "sf_{}_delta".format(name)):
        assert key in guided_losses
    loss_cls, loss_loc = plain_losses[spec.cls_key].detach(), plain_losses[spec.loc_key].detach()
    g = loss_loc / loss_cls
    torch.testing.assert_close(guided_losses["sf_{}_g".format(name)], g, rtol=1e-6, atol=0)
    assert guided_losses["sf_{}_delta".format(name)].item() == pytest.approx(delta_value)
    assert_same(guided_losses[spec.loc_key], plain_losses[spec.loc_key])
    head_total = (guided_losses[spec.cls_key] + guided_losses[spec.loc_key]
                  + guided_losses["loss_{}_log_delta".format(name)])
    expected = loss_loc + g * delta_value * loss_cls - math.log(delta_value)
    assert abs(head_total.item() - expected.item()) < 1e-6
    # The other stage of a two-stage detector is not guided by this switch.
    for key, value in plain_losses.items():
        if key.startswith("loss") and key not in (spec.cls_key, spec.loc_key):
            assert_same(guided_losses[key], value)

    # delta is trained: dL/d delta = g * L_cls - 1 / delta.
    sum(v for k, v in guided_losses.items() if k.startswith("loss")).backward()
    assert guided.get_parameter(delta_name).grad.item() == pytest.approx(
        (g * loss_cls).item() - 1.0 / delta_value, rel=1e-5)


# ---- LOSS_SCALE with GUIDED none ---------------------------------------------------------------

@pytest.mark.parametrize("detector", list(STAGES))
def test_fixed_loss_scale_multiplies_only_the_classification_loss(detector, shapes_train):
    spec = STAGES[detector]
    scale = 0.01
    unscaled = build(load_cfg(detector, stage_options(detector, guided="none", loss_scale=1.0)))
    scaled = build(load_cfg(detector, stage_options(detector, guided="none", loss_scale=scale)),
                   weights_from=unscaled)
    images, targets = images_and_targets(shapes_train, (0, 1))
    unscaled_losses, scaled_losses = run(unscaled, images, targets), run(scaled, images, targets)
    assert_same(scaled_losses[spec.cls_key], unscaled_losses[spec.cls_key] * scale)
    for key, value in unscaled_losses.items():
        if key != spec.cls_key:
            assert_same(scaled_losses[key], value)


# ---- Mask R-CNN: the mask loss is untouched ----------------------------------------------------

def test_mask_loss_is_untouched_by_sampling_free(shapes_train):
    # The baseline with the Sampling-Free config's proposal budget, so both heads see the same RoIs.
    same_proposals = ["MODEL.RPN.FPN_POST_NMS_PER_BATCH", "False", "MODEL.RPN.FPN_POST_NMS_TOP_N_TRAIN", "125"]
    baseline = build(load_cfg("roi", options=same_proposals, config="mask_rcnn_R_18_FPN_shapes.yaml"))
    sampling_free = build(load_cfg("roi", config="mask_rcnn_R_18_FPN_shapes_sampling_free.yaml"),
                          weights_from=None)
    incompatible = sampling_free.load_state_dict(baseline.state_dict(), strict=False)
    assert sorted(incompatible.missing_keys) == ["roi_heads.box.loss_scaler.delta", "rpn.loss_scaler.delta"]
    images, targets = images_and_targets(shapes_train, (0, 1))
    baseline_losses, sf_losses = run(baseline, images, targets), run(sampling_free, images, targets)
    # The mask head trains on the foreground proposals, all of which the baseline's sampler keeps
    # on these images; no scaler touches its loss.
    assert not any(key.startswith("sf_mask") or key.startswith("loss_mask_") for key in sf_losses)
    assert_same(sf_losses["loss_mask"], baseline_losses["loss_mask"])


# ---- No foreground at all ------------------------------------------------------------------------

FULL_SAMPLING_FREE = {
    "retinanet": "retinanet_R-18-FPN_shapes_sampling_free.yaml",
    "fcos": "fcos_R-18-FPN_shapes_sampling_free.yaml",
    "atss": "atss_R-18-FPN_shapes_sampling_free.yaml",
    "paa": "paa_R-18-FPN_shapes_sampling_free.yaml",
    "faster_rcnn": "faster_rcnn_R_18_FPN_shapes_sampling_free.yaml",
    "mask_rcnn": "mask_rcnn_R_18_FPN_shapes_sampling_free.yaml",
}


def without_boxes(target):
    """The same image's target with every box (and its label / mask) removed."""
    empty = target[torch.zeros(0, dtype=torch.int64)]
    assert len(empty) == 0 and set(empty.fields()) == set(target.fields())
    return empty


def assert_finite_step(model, images, targets):
    model.zero_grad(set_to_none=True)
    losses = run(model, images, targets)
    for key, value in losses.items():
        assert torch.isfinite(value).all(), "{} is {}".format(key, value)
    sum(v for k, v in losses.items() if k.startswith("loss")).backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert grads, "no parameter received a gradient"
    for name, grad in grads.items():
        assert torch.isfinite(grad).all(), "non-finite gradient in {}".format(name)
    return losses


@pytest.mark.parametrize("detector", list(FULL_SAMPLING_FREE))
def test_batch_without_foreground_is_finite_in_full_sampling_free_mode(detector, shapes_train, tmp_path):
    cfg = load_cfg(detector, ["MODEL.SAMPLING_FREE.SAMPLE_IMAGES", 4, "OUTPUT_DIR", str(tmp_path)],
                   config=FULL_SAMPLING_FREE[detector])
    model = build(cfg)
    assert measure_and_apply_optimal_bias(cfg, model, shapes_train)
    images, targets = images_and_targets(shapes_train, (0, 1))
    empty = [without_boxes(t) for t in targets]
    # A fresh model (no usable L_loc / L_cls ratio seen yet), then a batch mixing an empty image
    # with a normal one, then an empty batch again once the ratio has been measured.
    assert_finite_step(model, images, empty)
    assert_finite_step(model, images, [empty[0], targets[1]])
    losses = assert_finite_step(model, images, empty)
    for key, value in losses.items():
        if key.startswith("sf_") and key.endswith("_g"):
            assert value.item() > 0, "{}: the last usable ratio should stand in".format(key)


# ---- classification_grad_norms -----------------------------------------------------------------

@pytest.mark.parametrize("detector", ONE_STAGE + ["faster_rcnn"])
def test_classification_grad_norms_reports_every_head(detector, shapes_train):
    stages = ["rpn", "roi"] if detector == "faster_rcnn" else [detector]
    model = build(load_cfg(stages[0]))
    images, targets = images_and_targets(shapes_train, (0, 1))
    losses = run(model, images, targets)
    sum(v for k, v in losses.items() if k.startswith("loss")).backward()
    norms = classification_grad_norms(model)
    assert set(norms) == {"sf_{}_cls_grad_norm".format(STAGES[s].name) for s in stages}
    for stage in stages:
        layer = model.get_submodule(STAGES[stage].cls_layer)
        by_hand = math.sqrt(float((layer.weight.grad ** 2).sum() + (layer.bias.grad ** 2).sum()))
        assert norms["sf_{}_cls_grad_norm".format(STAGES[stage].name)] == pytest.approx(by_hand, rel=1e-5)
        assert by_hand > 0
