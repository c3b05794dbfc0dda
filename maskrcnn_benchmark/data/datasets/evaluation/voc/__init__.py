"""PASCAL VOC evaluation (mAP at IoU 0.5)."""
import logging
import os

import torch

from .voc_eval import do_voc_evaluation


def voc_evaluation(dataset, predictions, output_folder, box_only=False, **_):
    """Returns the dict of ``do_voc_evaluation`` (``result["map"]``); also saves predictions.pth."""
    logger = logging.getLogger(__name__)
    if box_only:
        logger.warning("box_only (proposal recall) is a COCO evaluation; VOC computes mAP only")
    if output_folder:
        os.makedirs(output_folder, exist_ok=True)
        torch.save(list(predictions), os.path.join(output_folder, "predictions.pth"))
    return do_voc_evaluation(dataset=dataset, predictions=predictions,
                             output_folder=output_folder, logger=logger)
