"""TEST.COCO_EVALUATOR: faster-coco-eval reports the same COCO numbers as pycocotools, boxes and
masks, on synthetic COCO-like detections (the benchmark's generator, at a small size)."""
import os
import sys

import pytest

from maskrcnn_benchmark.config import cfg
from maskrcnn_benchmark.data.datasets.evaluation.coco.coco_eval import do_coco_evaluation

pytest.importorskip("faster_coco_eval")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "benchmarks"))
from coco_evaluation import synthetic_coco  # noqa: E402


def test_default_is_pycocotools():
    assert cfg.TEST.COCO_EVALUATOR == "pycocotools"


@pytest.mark.parametrize("iou_types", [("bbox",), ("bbox", "segm")], ids=["bbox", "bbox+segm"])
def test_faster_coco_eval_gives_the_pycocotools_numbers(iou_types):
    dataset, predictions = synthetic_coco(16, 12, seed=3, with_masks="segm" in iou_types)
    reference, _ = do_coco_evaluation(dataset, predictions, False, None, iou_types, coco_evaluator="pycocotools")
    faster, _ = do_coco_evaluation(dataset, predictions, False, None, iou_types, coco_evaluator="faster_coco_eval")
    for iou_type in iou_types:
        assert 0.02 < reference[iou_type]["AP"] < 0.9  # a non-trivial score
        for metric, value in reference[iou_type].items():
            assert faster[iou_type][metric] == pytest.approx(value, abs=1e-12), (iou_type, metric)
        assert faster.per_class[iou_type].keys() == reference.per_class[iou_type].keys()
        for name, value in reference.per_class[iou_type].items():
            assert faster.per_class[iou_type][name] == pytest.approx(value, abs=1e-12)


def test_unknown_evaluator_is_named():
    dataset, predictions = synthetic_coco(2, 3)
    with pytest.raises(ValueError, match="TEST.COCO_EVALUATOR.*'cocoapi'"):
        do_coco_evaluation(dataset, predictions, False, None, ("bbox",), coco_evaluator="cocoapi")
