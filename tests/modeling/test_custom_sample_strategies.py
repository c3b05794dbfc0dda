"""A hard and a soft sample strategy registered from outside the package
(tests/modeling/toy_sample_strategies.py) train a Faster R-CNN from a yaml alone through the real
tools/train_net.py: CUSTOM_IMPORTS brings the module in, MODEL.SAMPLING_FREE.<STAGE>.HARD / SOFT
name the strategies and *_OPTIONS give their parameters, the RoI head hands the hard strategy the
loss of every candidate, and the soft strategy's state goes into the checkpoint."""
import os

import pytest
import torch
from torch.nn import functional as F

from maskrcnn_benchmark.engine.launch import load_config
from maskrcnn_benchmark.modeling.detector import build_detection_model
from maskrcnn_benchmark.structures.image_list import to_image_list

from helpers import images_and_targets, read_metrics, run_train_net

HERE = os.path.dirname(os.path.abspath(__file__))
TOY_YAML = os.path.join(HERE, "toy_sample_strategies.yaml")
ITERATIONS, IMAGES_PER_BATCH, PER_IMAGE = 20, 4, 48


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """20 iterations of tools/train_net.py on the shapes data (~30 s on one core)."""
    return run_train_net(TOY_YAML, tmp_path_factory.mktemp("toy_strategies"), module_dirs=(HERE,))


def test_the_yaml_alone_trains_with_the_toy_strategies(trained):
    records = read_metrics(trained)
    assert [r["iteration"] for r in records] == [5, 10, 15, 20]
    assert all(r["loss_classifier"] > 0 and r["loss_objectness"] > 0 for r in records)
    assert records[-1]["loss_box_reg"] < records[0]["loss_box_reg"]  # it learns

    state = torch.load(trained / "model_final.pth", map_location="cpu", weights_only=True)["model"]
    # Each head's soft strategy ran once per iteration, on what its hard strategy chose: the RoI
    # head's PER_IMAGE highest-loss proposals per image, the RPN's 256 sampled anchors per image.
    assert int(state["roi_heads.box.soft_strategy.calls"]) == ITERATIONS
    assert int(state["roi_heads.box.soft_strategy.last_num_samples"]) == PER_IMAGE * IMAGES_PER_BATCH
    assert int(state["rpn.soft_strategy.calls"]) == ITERATIONS
    assert int(state["rpn.soft_strategy.last_num_samples"]) == 256 * IMAGES_PER_BATCH

    model = build_detection_model(load_config(TOY_YAML, []))
    report = model.load_state_dict(state, strict=True)
    assert not report.missing_keys and not report.unexpected_keys
    assert type(model.roi_heads.box.hard_strategy).__name__ == "TopLoss"


def test_the_roi_head_ranks_every_candidate_by_its_loss_without_gradient(shapes_train):
    cfg = load_config(TOY_YAML, [])
    torch.manual_seed(0)
    model = build_detection_model(cfg).train()
    box_head = model.roi_heads.box
    assert box_head.soft_strategy.scale == 0.5 and box_head.hard_strategy.per_image == PER_IMAGE
    images, targets = images_and_targets(shapes_train, (0, 1))
    image_list = to_image_list(images, cfg.DATALOADER.SIZE_DIVISIBILITY)
    with torch.no_grad():
        features = model.backbone(image_list.tensors)
        proposals, _ = model.rpn(image_list, features, targets)
    given = [p.copy_with_fields([]) for p in proposals]
    _, trained_on, losses = box_head(features, proposals, targets)
    assert losses["loss_classifier"].requires_grad

    # By hand: every candidate's softmax CE plus its smooth-L1 box loss, from one forward.
    evaluator = box_head.loss_evaluator
    labels, regression_targets = evaluator.prepare_targets(given, targets)
    with torch.no_grad():
        logits, regression = box_head.predict(features, given)
    labels, regression_targets = torch.cat(labels), torch.cat(regression_targets)
    columns = 4 * labels[:, None] + torch.arange(4)
    box = F.smooth_l1_loss(regression.gather(1, columns), regression_targets, beta=1.0, reduction="none").sum(1)
    by_hand = F.cross_entropy(logits, labels, reduction="none") + box * (labels > 0)
    for hand, candidates, kept in zip(by_hand.split([len(p) for p in given]), given, trained_on):
        assert len(kept) == PER_IMAGE
        top = candidates.bbox[hand.topk(PER_IMAGE).indices]
        assert sorted(map(tuple, top.tolist())) == sorted(map(tuple, kept.bbox.tolist()))
