"""Proposals per image in training. maskrcnn-benchmark's FPN_POST_NMS_TOP_N_TRAIN is a per-batch
budget of each process (FPN_POST_NMS_PER_BATCH True), so an image's share changes with the number
of GPUs; the Sampling-Free configs, whose RoI head trains every proposal, keep the authors' 1000
per image at any GPU count. Also: the proposals an untrained RPN makes (InitialProposals), on
which the RoI head counts its samples for the optimal bias."""
import glob
import os

import pytest
import torch

from maskrcnn_benchmark.config import cfg as default_cfg
from maskrcnn_benchmark.modeling.box_coder import BoxCoder
from maskrcnn_benchmark.modeling.rpn.inference import (
    RPNPostProcessor,
    make_initial_proposals,
    make_rpn_postprocessor,
    proposals_per_image_in_training,
)
from maskrcnn_benchmark.structures.bounding_box import BoxList

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load(path):
    cfg = default_cfg.clone()
    cfg.merge_from_file(path)
    return cfg


def roi_trains_every_proposal(cfg):
    return not cfg.MODEL.SAMPLING_FREE.ROI.SAMPLER and not cfg.MODEL.RPN_ONLY and not any(
        cfg.MODEL[switch] for switch in ("RETINANET_ON", "FCOS_ON", "ATSS_ON", "PAA_ON"))


SAMPLING_FREE_ROI_CONFIGS = [
    path for path in sorted(glob.glob(os.path.join(ROOT, "configs", "**", "*.yaml"), recursive=True))
    if roi_trains_every_proposal(load(path))
]


def test_there_are_sampling_free_roi_configs():
    assert len(SAMPLING_FREE_ROI_CONFIGS) >= 9


@pytest.mark.parametrize("path", SAMPLING_FREE_ROI_CONFIGS, ids=lambda p: os.path.relpath(p, ROOT))
def test_sampling_free_configs_keep_their_proposals_per_image_at_any_gpu_count(path):
    cfg = load(path)
    counts = {gpus: proposals_per_image_in_training(cfg.MODEL.RPN, cfg.SOLVER.IMS_PER_BATCH // gpus)
              for gpus in (1, 2, 4, 8)}
    assert len(set(counts.values())) == 1, counts
    if not os.path.relpath(path, ROOT).startswith(os.path.join("configs", "shapes")):
        assert counts[8] == 1000


def test_the_baseline_share_depends_on_the_gpu_count():
    cfg = load(os.path.join(ROOT, "configs", "e2e_faster_rcnn_R_50_FPN_1x.yaml"))
    assert [proposals_per_image_in_training(cfg.MODEL.RPN, 16 // gpus) for gpus in (1, 8)] == [125, 1000]


def level_inputs(num_images, height=8, width=8, seed=0):
    """One level of 16 px anchors at stride 8 over a 64x64 image; random objectness."""
    generator = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.arange(height) * 8.0, torch.arange(width) * 8.0, indexing="ij")
    boxes = torch.stack([xs.flatten(), ys.flatten(), xs.flatten() + 16, ys.flatten() + 16], dim=1)
    anchors = [[BoxList(boxes, (64, 64)) for _ in range(2)] for _ in range(num_images)]  # two levels
    objectness = [torch.rand(num_images, 1, height, width, generator=generator) for _ in range(2)]
    regression = [torch.zeros(num_images, 4, height, width) for _ in range(2)]
    return anchors, objectness, regression


@pytest.mark.parametrize("per_batch", [True, False])
def test_post_processor_budget_per_image_or_per_batch(per_batch):
    post = RPNPostProcessor(pre_nms_top_n=64, post_nms_top_n=64, nms_thresh=1.0, min_size=0,
                            box_coder=BoxCoder((1.0, 1.0, 1.0, 1.0)), fpn_post_nms_top_n=40,
                            fpn_post_nms_per_batch=per_batch).train()
    for num_images in (1, 2, 4):
        proposals = post(*level_inputs(num_images))
        counts = [len(p) for p in proposals]
        if per_batch:
            assert sum(counts) == 40  # shared by the images of the process
        else:
            assert counts == [40] * num_images


def test_initial_proposals_are_a_constant_score_selection_of_anchors_plus_the_ground_truth():
    cfg = load(os.path.join(ROOT, "configs", "e2e_faster_rcnn_R_50_FPN_1x_sampling_free.yaml"))
    initial = make_initial_proposals(cfg, images_per_process=2)
    target = BoxList(torch.tensor([[100.0, 120.0, 300.0, 260.0], [500.0, 100.0, 560.0, 180.0]]), (800, 608))
    target.add_field("labels", torch.tensor([1, 2]))
    proposals = initial(target, (608, 800))
    assert len(proposals) == 1000 + 2
    assert torch.equal(proposals.bbox[-2:], target.bbox)  # the ground truth, appended as in training
    # no regression: a proposal away from the image border has the shape of one of the anchors
    shapes = torch.cat([cell[:, 2:] - cell[:, :2] for cell in initial.anchor_generator.cell_anchors])
    boxes = proposals.bbox[:-2]
    # (clipped boxes end on the last pixel, 799 / 607, in the default maskrcnn-benchmark box convention)
    inside = (boxes[:, 0] > 0) & (boxes[:, 1] > 0) & (boxes[:, 2] < 799) & (boxes[:, 3] < 607)
    sizes = boxes[inside, 2:] - boxes[inside, :2]
    assert inside.sum() > 100
    assert ((sizes[:, None, :] - shapes[None]).abs().amax(-1) < 1e-3).any(dim=1).all()
    # deterministic
    assert torch.equal(initial(target, (608, 800)).bbox, proposals.bbox)


def test_the_roi_head_counts_on_the_initial_proposals():
    from maskrcnn_benchmark.modeling.detector import build_detection_model

    cfg = load(os.path.join(ROOT, "configs", "shapes", "faster_rcnn_R_18_FPN_shapes_sampling_free.yaml"))
    cfg.MODEL.DEVICE = "cpu"
    box_head = build_detection_model(cfg).roi_heads.box
    target = BoxList(torch.tensor([[10.0, 12.0, 50.0, 60.0]]), (96, 96))
    target.add_field("labels", torch.tensor([3]))
    labels = box_head.labels_for_counting(target, (96, 96))
    proposals = box_head.initial_proposals(target, (96, 96))
    assert labels.numel() == len(proposals) <= 125 + 1
    assert labels[-1].item() == 3  # the ground-truth proposal
    (expected,), _ = box_head.loss_evaluator.prepare_targets([proposals], [target])
    assert torch.equal(labels, expected)
    assert set(labels.unique().tolist()) <= {0, 3}
