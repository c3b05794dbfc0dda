"""Boxes left with no area by decoding and clipping never reach NMS or the output.

Identical empty boxes have IoU 0 / 0: NMS cannot suppress them and kept every copy (49 of 100
detections on one COCO image had zero area). The RPN and the RoI box head drop them first. With
maskrcnn-benchmark's inclusive corners such a box is a one-pixel line along the border, not empty:
NMS suppresses its copies (IoU 1), as maskrcnn-benchmark does.
"""
import torch

from maskrcnn_benchmark.modeling.roi_heads.box_head.inference import PostProcessor
from maskrcnn_benchmark.modeling.rpn.inference import RPNPostProcessor
from maskrcnn_benchmark.modeling.box_coder import BoxCoder
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.box_convention import CONTINUOUS


def areas(boxes):
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def test_rpn_drops_proposals_clipped_to_nothing_before_nms():
    # Three anchors beyond the right border of a 100 x 100 image clip to the same empty box
    # [100, 0, 100, 10] (and score highest); one anchor is inside.
    anchors = BoxList(torch.tensor([[110.0, 0, 120, 10], [130.0, 0, 140, 10], [150.0, 0, 160, 10],
                                    [10.0, 10, 40, 40]]), (100, 100))
    objectness = torch.tensor([3.0, 2.0, 1.0, 0.0]).view(1, 4, 1, 1)
    selector = RPNPostProcessor(pre_nms_top_n=10, post_nms_top_n=10, nms_thresh=0.7, min_size=0,
                                fpn_post_nms_top_n=10, convention=CONTINUOUS).eval()
    (proposals,) = selector([[anchors]], [objectness], [torch.zeros(1, 16, 1, 1)])
    assert proposals.bbox.tolist() == [[10.0, 10.0, 40.0, 40.0]]
    # inclusive corners: the three clip to the last column, x = 99, and one of them stays
    selector = RPNPostProcessor(pre_nms_top_n=10, post_nms_top_n=10, nms_thresh=0.7, min_size=0,
                                fpn_post_nms_top_n=10).eval()
    (proposals,) = selector([[anchors]], [objectness], [torch.zeros(1, 16, 1, 1)])
    assert proposals.bbox.tolist() == [[99.0, 0.0, 99.0, 10.0], [10.0, 10.0, 40.0, 40.0]]


def test_roi_post_processor_drops_detections_clipped_to_nothing():
    # Four proposals beyond the bottom of a 64 x 64 image (identical after clipping, empty), one inside;
    # every proposal is confidently class 1.
    proposals = BoxList(torch.tensor([[10.0, 70, 30, 90]] * 4 + [[10.0, 10, 30, 30]]), (64, 64))
    logits = torch.tensor([[0.0, 8.0, 0.0]]).repeat(5, 1)
    processor = PostProcessor(score_thresh=0.05, nms=0.5, detections_per_img=100,
                              box_coder=BoxCoder((10.0, 10.0, 5.0, 5.0), convention=CONTINUOUS), convention=CONTINUOUS)
    (detections,) = processor((logits, torch.zeros(5, 12)), [proposals])
    assert len(detections) == 1
    assert bool((areas(detections.bbox) > 0).all())
    assert detections.bbox.tolist() == [[10.0, 10.0, 30.0, 30.0]] and detections.get_field("labels").tolist() == [1]
    # inclusive corners: the four clip to the last row, y = 63, one of them stays
    (detections,) = PostProcessor(score_thresh=0.05, nms=0.5, detections_per_img=100)(
        (logits, torch.zeros(5, 12)), [proposals])
    assert sorted(detections.bbox.tolist()) == [[10.0, 10.0, 30.0, 30.0], [10.0, 63.0, 30.0, 63.0]]
