"""Every ATSS / PAA config merges and builds a detector with the head and towers it describes."""
import glob
import os

import pytest
import torch

from maskrcnn_benchmark.config import cfg as default_cfg
from maskrcnn_benchmark.modeling.backbone.deform_conv import DFConv2d
from maskrcnn_benchmark.modeling.detector import build_detection_model
from maskrcnn_benchmark.modeling.rpn.atss import ATSSModule
from maskrcnn_benchmark.modeling.rpn.paa import PAAModule
from maskrcnn_benchmark.modeling.rpn.paa.inference import score_voting
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.box_convention import CONTINUOUS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = sorted(
    glob.glob(os.path.join(ROOT, "configs", "atss", "*.yaml"))
    + glob.glob(os.path.join(ROOT, "configs", "paa", "*.yaml"))
    + glob.glob(os.path.join(ROOT, "configs", "shapes", "atss_*.yaml"))
    + glob.glob(os.path.join(ROOT, "configs", "shapes", "paa_*.yaml"))
)


def test_all_expected_configs_exist():
    names = {os.path.relpath(p, os.path.join(ROOT, "configs")) for p in CONFIGS}
    for head in ("atss", "paa"):
        for stem in (f"{head}_R_50_FPN_1x", f"{head}_dcnv2_X_101_64x4d_FPN_2x"):
            assert f"{head}/{stem}.yaml" in names and f"{head}/{stem}_sampling_free.yaml" in names
        assert f"shapes/{head}_R-18-FPN_shapes.yaml" in names


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
def test_config_builds_its_detector(path):
    cfg = default_cfg.clone()
    cfg.merge_from_file(path)
    cfg.MODEL.WEIGHT = ""  # building only: no checkpoint is read
    is_paa = cfg.MODEL.PAA_ON
    head_cfg = cfg.MODEL.PAA if is_paa else cfg.MODEL.ATSS
    model = build_detection_model(cfg)
    module = model.rpn
    assert isinstance(module, PAAModule if is_paa else ATSSModule)
    assert module.anchor_generator.num_anchors_per_location() == [1] * len(head_cfg.ANCHOR_STRIDES)

    tower_dcn = [m for m in module.head.modules() if isinstance(m, DFConv2d)]
    assert len(tower_dcn) == (2 if head_cfg.USE_DCN_IN_TOWER else 0)
    if "X_101_64x4d" in path:
        assert cfg.MODEL.RESNETS.NUM_GROUPS == 64 and cfg.MODEL.RESNETS.WIDTH_PER_GROUP == 4
        assert tuple(cfg.MODEL.RESNETS.STAGE_WITH_DCN) == (False, True, True, True)
        assert any(isinstance(m, DFConv2d) for m in model.backbone.modules())
    if cfg.MODEL.SAMPLING_FREE.ONE_STAGE.CLS_LOSS == "ce":
        assert head_cfg.INFERENCE_TH < 0.05  # calibrated CE scores need a lower threshold
    if is_paa:
        voting = getattr(module.box_selector_test.refine, "func", None) is score_voting
        assert voting == head_cfg.INFERENCE_SCORE_VOTING


def test_dcn_tower_runs_and_starts_on_the_regular_grid():
    cfg = default_cfg.clone()
    cfg.MODEL.ATSS.USE_DCN_IN_TOWER = True
    cfg.MODEL.ATSS.NUM_CONVS = 2
    module = ATSSModule(cfg, 32)
    dcn = module.head.cls_tower[3]
    assert isinstance(dcn, DFConv2d)
    x = torch.randn(1, 32, 6, 7)
    # Offsets start at zero and the modulation mask at sigmoid(0) = 1/2: half a plain conv.
    plain = torch.nn.functional.conv2d(x, dcn.conv.weight, padding=1)
    assert torch.allclose(dcn(x), 0.5 * plain + dcn.conv.bias[None, :, None, None], atol=1e-5)
    logits, regression, quality = module.head([x])
    assert logits[0].shape == (1, 80, 6, 7) and regression[0].shape == (1, 4, 6, 7)


def test_score_voting_by_hand():
    kept = BoxList(torch.tensor([[0.0, 0.0, 10.0, 10.0]]), (50, 50))
    kept.add_field("scores", torch.tensor([0.9]))
    kept.add_field("labels", torch.tensor([1]))
    candidates = BoxList(torch.tensor([
        [0.0, 0.0, 10.0, 10.0],   # itself: IoU 1, weight 0.9
        [0.0, 0.0, 10.0, 12.0],   # IoU 100/120: weight 0.6 * exp(-(1/6)^2 / 0.025)
        [1.0, 0.0, 11.0, 10.0],   # other class: ignored
        [30.0, 30.0, 40.0, 40.0],  # no overlap: ignored
    ]), (50, 50))
    candidates.add_field("scores", torch.tensor([0.9, 0.6, 0.8, 0.7]))
    candidates.add_field("labels", torch.tensor([1, 1, 2, 1]))
    w0, w1 = 0.9, 0.6 * torch.exp(torch.tensor(-(1 / 6) ** 2 / 0.025)).item()
    expected_y2 = (w0 * 10.0 + w1 * 12.0) / (w0 + w1)
    voted = score_voting(kept, candidates, convention=CONTINUOUS)
    assert torch.allclose(voted.bbox, torch.tensor([[0.0, 0.0, 10.0, expected_y2]]), atol=1e-5)
    assert voted.get_field("scores").tolist() == pytest.approx([0.9])
