"""Entry point kept for maskrcnn-benchmark compatibility, where it wrapped a faster COCOeval.

pycocotools' own COCOeval is fast enough for the datasets used here, so this simply forwards to
``coco_eval.do_coco_evaluation``.
"""
from .coco_eval import do_coco_evaluation as _do_coco_evaluation


def do_coco_evaluation(dataset, predictions, box_only, output_folder, iou_types,
                       expected_results=(), expected_results_sigma_tol=4):
    return _do_coco_evaluation(dataset, predictions, box_only, output_folder, iou_types,
                               expected_results, expected_results_sigma_tol)
