"""The Table VIII heuristics inside the heads: what the RoI head hands its strategies (candidate
scores, losses, predicted boxes; the trained samples' context), how it applies a hard strategy's
weights, GHM-C in a dense head and the RPN (state in the checkpoint), and every heuristic's
shapes yaml training a step."""
import os

import pytest
import torch
from torch.nn import functional as F
from torchvision.ops import box_iou

from maskrcnn_benchmark.engine.launch import load_config
from maskrcnn_benchmark.modeling.box_coder import BoxCoder
from maskrcnn_benchmark.modeling.detector import build_detection_model
from maskrcnn_benchmark.modeling.matcher import Matcher
from maskrcnn_benchmark.modeling.roi_heads.box_head.loss import FastRCNNLossComputation
from maskrcnn_benchmark.modeling.sample_strategy import (
    CrossEntropy,
    GradientHarmonizedClassification,
    HardStrategy,
    IoUBalancedNegativeSampling,
    IoUHierarchicalReweighting,
    OnlineHardExampleMining,
    ScoreHierarchicalSampling,
    Selection,
    TrainedSamples,
)
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.box_convention import MASKRCNN_BENCHMARK
from maskrcnn_benchmark.structures.image_list import to_image_list
from maskrcnn_benchmark.utils.checkpoint import Checkpointer

from helpers import SHAPES_CONFIGS, images_and_targets, target_boxlist


class RecordingCrossEntropy(CrossEntropy):
    """Softmax CE that keeps what the head passed it."""

    def forward(self, logits, labels, weights=None, context=None):
        self.seen = dict(labels=labels, weights=weights, context=context)
        return super().forward(logits, labels, weights, context)


class EveryValidWithWeights(HardStrategy):
    """Every sample with a label >= 0, each with a given weight, divided by ``divisor``."""

    def __init__(self, weights, divisor):
        self.weights, self.divisor = weights, divisor

    def select(self, candidates):
        return Selection([labels >= 0 for labels in candidates.labels], self.divisor, self.divisor,
                         weights=self.weights)


def two_images():
    """Two images' ground truth and proposals (the ground truth among them, as the RPN adds it)."""
    targets = [target_boxlist([[10, 10, 50, 50], [60, 60, 100, 90]], [1, 2], (128, 128)),
               target_boxlist([[20, 30, 80, 70]], [3], (128, 128))]
    generator = torch.Generator().manual_seed(0)
    proposals = []
    for target in targets:
        near = target.bbox.repeat(4, 1) + torch.randn(4 * len(target), 4, generator=generator) * 4
        far = torch.tensor([[100.0, 0.0, 120.0, 20.0], [0.0, 100.0, 25.0, 127.0], [90.0, 10.0, 127.0, 40.0]])
        boxes = torch.cat([near, far, target.bbox])
        proposals.append(BoxList(boxes, (128, 128), mode="xyxy"))
    return proposals, targets


def loss_computation(hard, soft):
    return FastRCNNLossComputation(Matcher(0.5, 0.5, allow_low_quality_matches=False), hard,
                                   BoxCoder(weights=(10.0, 10.0, 5.0, 5.0)), soft_strategy=soft)


def test_roi_loss_applies_the_hard_strategys_weights_and_divisor():
    proposals, targets = two_images()
    weights = [torch.rand(len(p)) for p in proposals]
    evaluator = loss_computation(EveryValidWithWeights(weights, 7.0), CrossEntropy("softmax"))
    kept = evaluator.subsample(proposals, targets)
    assert [len(p) for p in kept] == [len(p) for p in proposals]  # fg 0.5 / bg 0.5: nothing ignored
    logits = torch.randn(sum(len(p) for p in kept), 4)
    regression = torch.randn(len(logits), 16) * 0.1
    loss_cls, _ = evaluator([logits], [regression])
    labels = torch.cat([p.get_field("labels") for p in kept])
    expected = (F.cross_entropy(logits, labels, reduction="none") * torch.cat(weights)).sum() / 7.0
    torch.testing.assert_close(loss_cls, expected)


def test_roi_context_numbers_ground_truth_across_images_and_gives_predicted_ious():
    proposals, targets = two_images()
    soft = RecordingCrossEntropy("softmax")
    evaluator = loss_computation(EveryValidWithWeights(None, 1.0), soft)
    kept = evaluator.subsample(proposals, targets)
    torch.manual_seed(0)
    regression = torch.randn(sum(len(p) for p in kept), 16) * 0.2
    evaluator([torch.randn(len(regression), 4)], [regression])
    context = soft.seen["context"]
    assert isinstance(context, TrainedSamples)
    labels = soft.seen["labels"]

    # independently: each positive's best ground truth by torchvision's IoU, (image, box) pairs
    matched, predicted_iou, best_iou = [], [], []
    coder = BoxCoder(weights=(10.0, 10.0, 5.0, 5.0))
    rows = regression.split([len(p) for p in kept])
    for image, (p, target, image_rows) in enumerate(zip(kept, targets, rows)):
        # the matcher's IoU is the default box convention's: the boxes as continuous ones, one pixel wider
        ious = box_iou(MASKRCNN_BENCHMARK.to_continuous(p.bbox), MASKRCNN_BENCHMARK.to_continuous(target.bbox))
        best, index = ious.max(dim=1)
        best_iou.append(best)
        image_labels = p.get_field("labels")
        for row, (label, gt) in enumerate(zip(image_labels.tolist(), index.tolist())):
            matched.append((image, gt) if label > 0 else None)
            if label > 0:
                columns = slice(4 * label, 4 * label + 4)
                box = coder.decode(image_rows[row:row + 1, columns], p.bbox[row:row + 1])
                predicted_iou.append(float(box_iou(box, target.bbox[gt:gt + 1])[0, 0]))
            else:
                predicted_iou.append(0.0)
    torch.testing.assert_close(context.ious, torch.cat(best_iou))
    torch.testing.assert_close(context.predicted_ious(), torch.tensor(predicted_iou), rtol=1e-5, atol=1e-5)
    ids = context.ground_truth.tolist()
    for i, pair in enumerate(matched):
        assert (ids[i] == -1) == (pair is None)
        for j, other in enumerate(matched):
            if pair is not None and other is not None:
                assert (ids[i] == ids[j]) == (pair == other)
    assert len({ids[i] for i, pair in enumerate(matched) if pair is not None}) == 3  # 3 boxes in 2 images
    assert bool((labels > 0).any()) and bool((labels == 0).any())


@pytest.fixture(scope="module")
def shapes_faster_rcnn_step(shapes_train):
    """Features, proposals and targets of two shapes images through a fresh Faster R-CNN."""
    cfg = load_config(os.path.join(SHAPES_CONFIGS, "faster_rcnn_R_18_FPN_shapes.yaml"), [])
    torch.manual_seed(0)
    model = build_detection_model(cfg).train()
    images, targets = images_and_targets(shapes_train, (0, 1))
    image_list = to_image_list(images, cfg.DATALOADER.SIZE_DIVISIBILITY)
    with torch.no_grad():
        features = model.backbone(image_list.tensors)
        proposals, _ = model.rpn(image_list, features, targets)
    return model, features, proposals, targets


def test_roi_head_candidates_give_scores_classification_losses_and_class_boxes(shapes_faster_rcnn_step):
    model, features, proposals, targets = shapes_faster_rcnn_step
    box_head = model.roi_heads.box
    seen = {}

    class Spy(HardStrategy):
        def select(self, candidates):
            seen["scores"] = candidates.scores()
            seen["cls"] = candidates.classification_losses()
            classes = [torch.randint(0, 5, (len(labels),), generator=torch.Generator().manual_seed(1))
                       for labels in candidates.labels]
            seen["classes"] = classes
            seen["boxes"] = candidates.predicted_boxes(classes)
            return Selection([labels >= 0 for labels in candidates.labels], 1, 1)

    evaluator = box_head.loss_evaluator
    original = evaluator.fg_bg_sampler
    evaluator.fg_bg_sampler = Spy()
    try:
        given = [p.copy_with_fields([]) for p in proposals]
        box_head(features, [p.copy_with_fields([]) for p in proposals], targets)
    finally:
        evaluator.fg_bg_sampler = original
    labels, _ = evaluator.prepare_targets(given, targets)
    with torch.no_grad():
        logits, regression = box_head.predict(features, given)
    labels = torch.cat(labels)
    torch.testing.assert_close(torch.cat(seen["scores"]), logits.softmax(dim=1))
    torch.testing.assert_close(torch.cat(seen["cls"]), F.cross_entropy(logits, labels, reduction="none"))
    classes = torch.cat(seen["classes"])
    by_hand = torch.stack([regression[i, 4 * c:4 * c + 4] for i, c in enumerate(classes.tolist())])
    expected = BoxCoder(weights=(10.0, 10.0, 5.0, 5.0)).decode(by_hand, torch.cat([p.bbox for p in given]))
    torch.testing.assert_close(torch.cat(seen["boxes"]), expected)


HEURISTIC_YAMLS = {
    "faster_rcnn_R_18_FPN_shapes_ohem.yaml": (OnlineHardExampleMining, CrossEntropy),
    "faster_rcnn_R_18_FPN_shapes_iou_balanced.yaml": (IoUBalancedNegativeSampling, CrossEntropy),
    "faster_rcnn_R_18_FPN_shapes_isr.yaml": (ScoreHierarchicalSampling, IoUHierarchicalReweighting),
}


@pytest.mark.parametrize("name", sorted(HEURISTIC_YAMLS))
def test_each_faster_rcnn_heuristic_yaml_trains_a_step(name, shapes_train):
    cfg = load_config(os.path.join(SHAPES_CONFIGS, name), ["MODEL.RPN.FPN_POST_NMS_TOP_N_TRAIN", "2048"])
    torch.manual_seed(0)
    model = build_detection_model(cfg).train()
    hard, soft = HEURISTIC_YAMLS[name]
    box_head = model.roi_heads.box
    assert type(box_head.hard_strategy) is hard and type(box_head.soft_strategy) is soft
    assert box_head.loss_evaluator.fg_bg_sampler is box_head.hard_strategy
    images, targets = images_and_targets(shapes_train, (0, 1, 2, 3))
    losses = model(to_image_list(images, 32), targets)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(v for k, v in losses.items() if k.startswith("loss")).backward()
    # the budget (128 per image, 25 % foreground) out of the ~2x larger pool of proposals
    kept = box_head.loss_evaluator._proposals
    assert all(len(p) <= 128 for p in kept)
    assert all(int((p.get_field("labels") > 0).sum()) <= 32 for p in kept)


def test_ghm_c_in_retinanet_keeps_its_moving_average_in_the_checkpoint(shapes_train, tmp_path):
    yaml = os.path.join(SHAPES_CONFIGS, "retinanet_R-18-FPN_shapes_ghm.yaml")
    cfg = load_config(yaml, [])
    torch.manual_seed(0)
    model = build_detection_model(cfg).train()
    ghm = model.rpn.soft_strategy
    assert isinstance(ghm, GradientHarmonizedClassification) and (ghm.bins, ghm.momentum) == (30, 0.75)
    images, targets = images_and_targets(shapes_train, (0, 1))
    image_list = to_image_list(images, 32)
    model(image_list, targets)
    model(image_list, targets)
    assert float(ghm.acc_sum.sum()) > 0
    Checkpointer(model, save_dir=str(tmp_path), save_to_disk=True).save("ghm")
    saved = torch.load(tmp_path / "ghm.pth", weights_only=True)["model"]
    torch.testing.assert_close(saved["rpn.soft_strategy.acc_sum"], ghm.acc_sum)

    torch.manual_seed(1)
    resumed = build_detection_model(cfg).train()
    assert float(resumed.rpn.soft_strategy.acc_sum.sum()) == 0
    Checkpointer(resumed, save_dir=str(tmp_path)).load(match="exact")
    torch.testing.assert_close(resumed.rpn.soft_strategy.acc_sum, ghm.acc_sum)
    # and training continues from it: the next losses agree
    torch.testing.assert_close(resumed(image_list, targets)["loss_retina_cls"],
                               model(image_list, targets)["loss_retina_cls"])


def test_ghm_c_in_the_rpn_is_not_divided_by_the_number_sampled(shapes_faster_rcnn_step):
    model, features, _, targets = shapes_faster_rcnn_step
    cfg = load_config(os.path.join(SHAPES_CONFIGS, "faster_rcnn_R_18_FPN_shapes.yaml"),
                      ["MODEL.SAMPLING_FREE.RPN.SOFT", "ghm_c"])
    torch.manual_seed(0)
    ghm_model = build_detection_model(cfg).train()
    rpn = ghm_model.rpn
    assert isinstance(rpn.soft_strategy, GradientHarmonizedClassification)
    images = to_image_list([torch.zeros(3, 128, 128)] * len(targets), 32)
    seen = {}
    forward = rpn.soft_strategy.forward

    def recording(logits, labels, weights=None, context=None):
        seen["loss"] = forward(logits, labels, weights, context)
        return seen["loss"]

    rpn.soft_strategy.forward = recording
    _, losses = rpn(images, features, targets)
    torch.testing.assert_close(losses["loss_objectness"], seen["loss"])  # GHM-C's own mean, not divided
    assert float(rpn.soft_strategy.acc_sum.sum()) > 0
