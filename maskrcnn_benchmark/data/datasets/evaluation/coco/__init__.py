"""COCO-style evaluation: bbox and segm AP (pycocotools), proposal recall."""
import logging

from .coco_eval import do_coco_evaluation

logger = logging.getLogger(__name__)


def coco_evaluation(dataset, predictions, output_folder, box_only=False, iou_types=("bbox",),
                    expected_results=(), expected_results_sigma_tol=4, coco_evaluator="pycocotools",
                    box_convention=None):
    """See ``coco_eval.do_coco_evaluation``; returns ``(COCOResults, coco result dicts)``."""
    return do_coco_evaluation(
        dataset=dataset,
        predictions=predictions,
        box_only=box_only,
        output_folder=output_folder,
        iou_types=iou_types,
        expected_results=expected_results,
        expected_results_sigma_tol=expected_results_sigma_tol,
        coco_evaluator=coco_evaluator,
        **({} if box_convention is None else {"box_convention": box_convention}),
    )
