"""``evaluate(dataset, predictions, output_folder, **kwargs)`` picks the evaluation that fits
the dataset: COCO (bbox / segm AP, proposal recall) or PASCAL VOC (mAP)."""
from maskrcnn_benchmark.data import datasets

from .coco import coco_evaluation
from .voc import voc_evaluation


def evaluate(dataset, predictions, output_folder, **kwargs):
    """Keyword arguments: ``box_only``, ``iou_types``, ``expected_results``,
    ``expected_results_sigma_tol`` (the VOC evaluation ignores those it does not use)."""
    args = dict(dataset=dataset, predictions=predictions, output_folder=output_folder, **kwargs)
    if isinstance(dataset, datasets.COCODataset):
        return coco_evaluation(**args)
    if isinstance(dataset, datasets.PascalVOCDataset):
        return voc_evaluation(**args)
    raise NotImplementedError("no evaluation for a dataset of type {}; COCODataset and "
                              "PascalVOCDataset are supported".format(type(dataset).__name__))
