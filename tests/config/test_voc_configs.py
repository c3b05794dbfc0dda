"""The PASCAL VOC configs follow the Sampling-Free authors' published VOC settings (Table V:
RetinaNet and Faster R-CNN, ChenJoya/sampling-free configs/*/..._voc_R_50_FPN_0.2x.yaml); the
one-stage heads they published none for take the schedule of their RetinaNet VOC file. The
expected values below are those files' (the comments of our yaml files say the same)."""
import os

import pytest
import torch

from maskrcnn_benchmark.config import cfg as default_cfg
from maskrcnn_benchmark.modeling.detector import build_detection_model
from maskrcnn_benchmark.structures.image_list import to_image_list

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VOC_TRAIN = ("voc_2007_trainval", "voc_2012_trainval")  # = their 2007 / 2012 train + val


def load(name):
    cfg = default_cfg.clone()
    cfg.merge_from_file(os.path.join(ROOT, "configs", name))
    return cfg


def schedule(cfg):
    return cfg.SOLVER.BASE_LR, tuple(cfg.SOLVER.STEPS), cfg.SOLVER.MAX_ITER, cfg.SOLVER.IMS_PER_BATCH


@pytest.mark.parametrize("name", ["retinanet/retinanet_R-50-FPN_voc.yaml", "retinanet/retinanet_R-50-FPN_voc_sampling_free.yaml"])
def test_retinanet_voc_is_the_authors_setting(name):
    cfg = load(name)
    assert schedule(cfg) == (0.01, (11000,), 14000, 16)
    assert cfg.MODEL.BACKBONE.CONV_BODY == "R-50-FPN-RETINANET-VOC"
    assert tuple(cfg.MODEL.RETINANET.ANCHOR_SIZES) == (64, 128, 256, 512)
    assert tuple(cfg.MODEL.RETINANET.ANCHOR_STRIDES) == (16, 32, 64, 128)
    assert cfg.MODEL.RETINANET.NUM_CLASSES == 21 and tuple(cfg.DATASETS.TRAIN) == VOC_TRAIN
    assert (cfg.INPUT.MIN_SIZE_TRAIN, cfg.INPUT.MAX_SIZE_TRAIN) == ((800,), 1333)


@pytest.mark.parametrize("name", ["e2e_faster_rcnn_R_50_FPN_voc.yaml", "e2e_faster_rcnn_R_50_FPN_voc_sampling_free.yaml"])
def test_faster_rcnn_voc_is_the_authors_setting(name):
    cfg = load(name)
    assert schedule(cfg) == (0.01, (12000, 16000), 18000, 16)
    assert cfg.MODEL.BACKBONE.CONV_BODY == "R-50-FPN"
    assert tuple(cfg.MODEL.RPN.ANCHOR_SIZES) == (32, 64, 128, 256, 512)
    assert tuple(cfg.MODEL.RPN.ANCHOR_STRIDE) == (4, 8, 16, 32, 64)
    assert cfg.MODEL.RPN.PRE_NMS_TOP_N_TRAIN == 2000
    assert cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES == 21 and tuple(cfg.DATASETS.TRAIN) == VOC_TRAIN


@pytest.mark.parametrize("group,name", [("FCOS", "fcos/fcos_R_50_FPN_voc.yaml"), ("ATSS", "atss/atss_R_50_FPN_voc.yaml"),
                                        ("PAA", "paa/paa_R_50_FPN_voc.yaml")])
def test_other_one_stage_heads_take_the_one_stage_voc_schedule_and_keep_their_pyramid(group, name):
    cfg = load(name)
    coco = load(name.replace("_voc", "_1x"))
    assert schedule(cfg) == (0.01, (11000,), 14000, 16)
    assert cfg.MODEL.BACKBONE.CONV_BODY == coco.MODEL.BACKBONE.CONV_BODY == "R-50-FPN-RETINANET"
    assert cfg.MODEL[group].NUM_CLASSES == 21


def test_the_voc_retinanet_pyramid_is_p4_to_p7_and_its_anchors_sit_on_it():
    cfg = load("retinanet/retinanet_R-50-FPN_voc.yaml")
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.WEIGHT = ""
    model = build_detection_model(cfg).eval()
    images = to_image_list([torch.zeros(3, 256, 384)], cfg.DATALOADER.SIZE_DIVISIBILITY)
    with torch.no_grad():
        features = model.backbone(images.tensors)
    assert [tuple(f.shape[-2:]) for f in features] == [(256 // s, 384 // s) for s in (16, 32, 64, 128)]
    head = model.rpn
    assert tuple(head.anchor_generator.strides) == (16, 32, 64, 128)
    assert [len(cell) for cell in head.anchor_generator.cell_anchors] == [9] * 4
