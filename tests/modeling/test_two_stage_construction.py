"""The two-stage modules are built from explicit arguments; a config is read only at the boundary."""
import pytest
import torch
from torch import nn
from yacs.config import CfgNode

from maskrcnn_benchmark.config import cfg as global_cfg
from maskrcnn_benchmark.modeling.balanced_positive_negative_sampler import BalancedPositiveNegativeSampler
from maskrcnn_benchmark.modeling.box_coder import BoxCoder
from maskrcnn_benchmark.modeling.detector import build_detection_model
from maskrcnn_benchmark.modeling.matcher import Matcher
from maskrcnn_benchmark.modeling.roi_heads.box_head.loss import FastRCNNLossComputation
from maskrcnn_benchmark.modeling.roi_heads.box_head.roi_box_feature_extractors import (
    ResNet50Conv5ROIFeatureExtractor,
)
from maskrcnn_benchmark.modeling.rpn.anchor_generator import AnchorGenerator
from maskrcnn_benchmark.modeling.rpn.inference import RPNPostProcessor
from maskrcnn_benchmark.modeling.rpn.rpn import RPNHead, RPNModule
from maskrcnn_benchmark.modeling.sample_strategy import AllSamples, BiasedSampling
from maskrcnn_benchmark.modeling.sampling_free import StageSettings
from maskrcnn_benchmark.structures.image_list import ImageList

from helpers import shapes_cfg, target_boxlist

TWO_STAGE_CONFIGS = [
    ("faster_rcnn_R_18_FPN_shapes.yaml",), ("mask_rcnn_R_18_FPN_shapes_sampling_free.yaml",),
]


@pytest.mark.parametrize("names", TWO_STAGE_CONFIGS, ids=lambda n: n[0])
def test_no_module_keeps_a_config(names):
    model = build_detection_model(shapes_cfg(*names))
    for name, module in model.named_modules():
        kept = [key for key, value in vars(module).items() if isinstance(value, CfgNode)]
        assert not kept, f"{name or 'model'} keeps a config in {kept}"


def test_c4_head_takes_its_group_norm_from_the_config_not_the_global_one():
    cfg = global_cfg.clone()
    cfg.merge_from_list(["MODEL.RESNETS.TRANS_FUNC", "BottleneckWithGN", "MODEL.GROUP_NORM.NUM_GROUPS", 16])
    assert global_cfg.MODEL.GROUP_NORM.NUM_GROUPS == 32
    extractor = ResNet50Conv5ROIFeatureExtractor(cfg, 1024)
    groups = {m.num_groups for m in extractor.modules() if isinstance(m, nn.GroupNorm)}
    assert groups == {16}


def test_rpn_built_from_explicit_arguments_trains_and_proposes():
    anchor_generator = AnchorGenerator(((32,),), (1.0,), (16,), straddle_thresh=0)
    settings = StageSettings(stage="RPN", hard="all", soft="ce", batch_size_per_image=256, positive_fraction=0.5)
    rpn = RPNModule(
        settings=settings, anchor_generator=anchor_generator, head=RPNHead(in_channels=8, num_anchors=1),
        proposal_matcher=Matcher(0.7, 0.3, allow_low_quality_matches=True), box_coder=BoxCoder((1.0,) * 4),
        box_selector_train=RPNPostProcessor(100, 50, 0.7, 0, fpn_post_nms_top_n=50),
        box_selector_test=RPNPostProcessor(100, 50, 0.7, 0, fpn_post_nms_top_n=50),
    )
    assert isinstance(rpn.hard_strategy, AllSamples) and rpn.loss_evaluator.fg_bg_sampler is rpn.hard_strategy
    images = ImageList(torch.zeros(1, 3, 128, 128), [(128, 128)])
    features = [torch.randn(1, 8, 8, 8)]
    proposals, losses = rpn.train()(images, features, [target_boxlist([[8, 8, 40, 40]], [1], (128, 128))])
    assert set(losses) == {"loss_objectness", "loss_rpn_box_reg", "sf_rpn_cls", "sf_rpn_loc"}
    assert torch.isfinite(losses["loss_objectness"]) and len(proposals[0]) > 1


def test_maskrcnn_benchmark_forms_still_build_the_same_modules():
    cfg = shapes_cfg("faster_rcnn_R_18_FPN_shapes.yaml")
    torch.manual_seed(0)
    legacy = RPNHead(cfg, 16, 3)
    torch.manual_seed(0)
    explicit = RPNHead(in_channels=16, num_anchors=3)
    for (name, a), (_, b) in zip(legacy.state_dict().items(), explicit.state_dict().items()):
        assert torch.equal(a, b), name
    # a loss computation given maskrcnn-benchmark's sampler trains with the "biased" strategy
    loss = FastRCNNLossComputation(Matcher(0.5, 0.5), BalancedPositiveNegativeSampler(512, 0.25), BoxCoder((10.0,) * 4))
    assert isinstance(loss.fg_bg_sampler, BiasedSampling)
    assert loss.fg_bg_sampler.sampler.batch_size_per_image == 512


@pytest.mark.parametrize("key", ["MODEL.ROI_BOX_HEAD.PREDICTOR", "MODEL.ROI_BOX_HEAD.FEATURE_EXTRACTOR",
                                 "MODEL.RPN.RPN_HEAD", "MODEL.ROI_MASK_HEAD.PREDICTOR"])
def test_an_unknown_registered_name_is_named_with_its_key(key):
    cfg = shapes_cfg("mask_rcnn_R_18_FPN_shapes.yaml", options=[key, "NoSuchModule"])
    with pytest.raises(KeyError, match=rf"{key}: unknown 'NoSuchModule'; registered: \["):
        build_detection_model(cfg)
