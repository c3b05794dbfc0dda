"""The post-processor shared by the dense heads (dense_heads/postprocess.py) against brute force and
torchvision, its empty-box filter, and PAA's score voting on boxes clipped to nothing."""
import pytest
import torch
from torchvision.ops import batched_nms

from maskrcnn_benchmark.config import cfg as default_cfg
from maskrcnn_benchmark.modeling.box_coder import BoxCoder
from maskrcnn_benchmark.modeling.dense_heads.points import boxes_from_points
from maskrcnn_benchmark.modeling.dense_heads.postprocess import (
    candidates_above_threshold,
    detections_boxlist,
    keep_top_candidates,
    keep_top_detections,
)
from maskrcnn_benchmark.modeling.rpn.atss.inference import make_atss_postprocessor
from maskrcnn_benchmark.modeling.rpn.fcos.inference import make_fcos_postprocessor
from maskrcnn_benchmark.modeling.rpn.paa.inference import make_paa_postprocessor, score_voting
from maskrcnn_benchmark.modeling.rpn.retinanet.inference import RetinaNetPostProcessor, make_retinanet_postprocessor
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.box_convention import CONTINUOUS, MASKRCNN_BENCHMARK


@pytest.mark.parametrize("top_n", [1, 7, 1000])
def test_candidates_are_the_top_n_pairs_above_the_threshold(top_n):
    generator = torch.Generator().manual_seed(0)
    probs = torch.rand(30, 4, generator=generator)
    position_idx, class_idx, candidate_probs = candidates_above_threshold(probs, 0.6)
    scores = candidate_probs * 2  # any head-specific score
    scores, position_idx, class_idx = keep_top_candidates(scores, top_n, position_idx, class_idx)

    above = [(p, c) for p in range(30) for c in range(4) if probs[p, c] > 0.6]
    expected = sorted(above, key=lambda pc: -probs[pc].item())[:top_n]
    assert sorted(zip(position_idx.tolist(), class_idx.tolist())) == sorted(expected)
    assert torch.equal(scores, probs[position_idx, class_idx] * 2)


def test_detections_are_clipped_labelled_and_small_boxes_dropped():
    boxes = torch.tensor([[-5.0, 2.0, 30.0, 8.0], [10.0, 10.0, 10.5, 20.0], [45.0, 0.0, 60.0, 5.0]])
    labels, scores = torch.tensor([0, 2, 1]), torch.tensor([0.9, 0.8, 0.7])
    detections = detections_boxlist(boxes, (50, 40), labels, scores, 1.0, CONTINUOUS)
    assert detections.bbox.tolist() == [[0.0, 2.0, 30.0, 8.0], [45.0, 0.0, 50.0, 5.0]]
    assert detections.get_field("labels").tolist() == [1, 2]
    assert detections.get_field("scores").tolist() == pytest.approx([0.9, 0.7])
    # inclusive corners: clipped to x <= 49, and the second box is 1.5 pixels wide
    detections = detections_boxlist(boxes, (50, 40), labels, scores, 1.0, MASKRCNN_BENCHMARK)
    assert detections.bbox.tolist() == [[0.0, 2.0, 30.0, 8.0], [10.0, 10.0, 10.5, 20.0], [45.0, 0.0, 49.0, 5.0]]
    assert detections.get_field("labels").tolist() == [1, 3, 2]


@pytest.mark.parametrize("convention", [CONTINUOUS, MASKRCNN_BENCHMARK])
def test_classwise_nms_and_cap_match_torchvision(convention):
    generator = torch.Generator().manual_seed(1)
    corners = torch.rand(60, 2, generator=generator) * 80
    boxes = torch.cat([corners, corners + 5 + torch.rand(60, 2, generator=generator) * 30], dim=1)
    scores = torch.rand(60, generator=generator)
    labels = torch.randint(1, 4, (60,), generator=generator)
    boxlist = BoxList(boxes, (120, 120))
    boxlist.add_field("scores", scores)
    boxlist.add_field("labels", labels)

    kept = keep_top_detections(boxlist, 0.5, 10, convention)
    expected = batched_nms(convention.to_continuous(boxes), scores, labels, 0.5)[:10]
    assert torch.equal(kept.bbox, boxes[expected])
    assert torch.equal(kept.get_field("labels"), labels[expected])


def test_each_postprocessor_reads_its_own_config_section():
    cfg = default_cfg.clone()
    sections = {"RETINANET": 1, "FCOS": 2, "ATSS": 3, "PAA": 4}
    for section, k in sections.items():
        cfg.MODEL[section].INFERENCE_TH = 0.1 * k
        cfg.MODEL[section].PRE_NMS_TOP_N = 10 * k
        cfg.MODEL[section].NMS_TH = 0.2 * k
        cfg.MODEL[section].NUM_CLASSES = 5 + k
    cfg.MODEL.PAA.INFERENCE_SCORE_VOTING = True
    cfg.TEST.DETECTIONS_PER_IMG = 17
    coder = BoxCoder((10.0, 10.0, 5.0, 5.0))
    processors = {
        "RETINANET": make_retinanet_postprocessor(cfg, coder, is_train=False),
        "FCOS": make_fcos_postprocessor(cfg),
        "ATSS": make_atss_postprocessor(cfg, coder),
        "PAA": make_paa_postprocessor(cfg, coder),
    }
    for section, processor in processors.items():
        k = sections[section]
        settings = (processor.pre_nms_thresh, processor.pre_nms_top_n, processor.nms_thresh,
                    processor.fpn_post_nms_top_n, processor.min_size, processor.num_classes)
        assert settings == (0.1 * k, 10 * k, 0.2 * k, 17, 0, 5 + k), section
    assert processors["RETINANET"].box_coder is coder
    assert processors["ATSS"].decode == coder.decode and processors["FCOS"].decode is boxes_from_points
    assert processors["PAA"].refine.func is score_voting and processors["ATSS"].refine is None
    assert processors["PAA"].refine.keywords["convention"] is coder.convention


def test_score_voting_leaves_empty_boxes_as_they_are():
    # Boxes decoded outside the image are clipped to zero width; their IoU with each other is
    # 0 / 0. They must stay finite (no NaN) and unchanged; the real box still gets its vote.
    kept = BoxList(torch.tensor([[0.0, 0.0, 10.0, 10.0], [50.0, 5.0, 50.0, 15.0]]), (50, 50))
    kept.add_field("scores", torch.tensor([0.9, 0.5]))
    kept.add_field("labels", torch.tensor([1, 1]))
    candidates = BoxList(torch.tensor([
        [0.0, 0.0, 10.0, 10.0],
        [0.0, 0.0, 10.0, 12.0],
        [50.0, 5.0, 50.0, 15.0],
        [50.0, 0.0, 50.0, 9.0],
    ]), (50, 50))
    candidates.add_field("scores", torch.tensor([0.9, 0.6, 0.5, 0.4]))
    candidates.add_field("labels", torch.tensor([1, 1, 1, 1]))

    voted = score_voting(kept, candidates, convention=CONTINUOUS)
    w0, w1 = 0.9, 0.6 * torch.exp(torch.tensor(-(1 / 6) ** 2 / 0.025)).item()
    expected = torch.tensor([[0.0, 0.0, 10.0, (w0 * 10.0 + w1 * 12.0) / (w0 + w1)], [50.0, 5.0, 50.0, 15.0]])
    assert torch.isfinite(voted.bbox).all()
    assert torch.allclose(voted.bbox, expected, atol=1e-5)


def test_empty_boxes_are_dropped_before_nms():
    # Four anchors left of the image decode (zero deltas) to boxes that clip to the same empty box
    # x1 = x2 = 0. Identical empty boxes have IoU 0 / 0 = NaN, which suppresses nothing, so every
    # copy used to come out (49 of 100 detections of a COCO image with random weights had no area).
    anchors = BoxList(torch.tensor([[-30.0, 10.0, -20.0, 20.0]] * 4 + [[10.0, 10.0, 20.0, 20.0]]), (50, 50))
    probs = torch.tensor([[0.9], [0.8], [0.7], [0.6], [0.5]])
    logits = torch.logit(probs).t().reshape(1, 1, 1, 5)
    post = RetinaNetPostProcessor(0.05, 1000, 0.5, 100, 0, 2, BoxCoder((10.0, 10.0, 5.0, 5.0), convention=CONTINUOUS))
    result = post([[anchors]], [logits], [torch.zeros(1, 4, 1, 5)])[0]
    assert result.bbox.tolist() == [[10.0, 10.0, 20.0, 20.0]]
    assert result.get_field("scores").tolist() == pytest.approx([0.5])
    # With inclusive corners x1 = x2 = 0 is the image's first column, a box (maskrcnn-benchmark keeps
    # it): the four copies have IoU 1 and NMS keeps one.
    result = RetinaNetPostProcessor(0.05, 1000, 0.5, 100, 0, 2)([[anchors]], [logits], [torch.zeros(1, 4, 1, 5)])[0]
    assert result.bbox.tolist() == [[0.0, 10.0, 0.0, 20.0], [10.0, 10.0, 20.0, 20.0]]
    assert result.get_field("scores").tolist() == pytest.approx([0.9, 0.5])
