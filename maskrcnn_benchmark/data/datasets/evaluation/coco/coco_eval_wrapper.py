"""Entry point kept for maskrcnn-benchmark compatibility, where it wrapped a faster COCOeval.

The faster implementation is now a choice of ``coco_eval.do_coco_evaluation``
(``coco_evaluator="faster_coco_eval"``, TEST.COCO_EVALUATOR); this forwards to it.
"""
from .coco_eval import do_coco_evaluation as _do_coco_evaluation


def do_coco_evaluation(dataset, predictions, box_only, output_folder, iou_types,
                       expected_results=(), expected_results_sigma_tol=4, coco_evaluator="faster_coco_eval"):
    return _do_coco_evaluation(dataset, predictions, box_only, output_folder, iou_types,
                               expected_results, expected_results_sigma_tol, coco_evaluator=coco_evaluator)
