"""Run a detector over a test set, gather predictions from every process and evaluate them."""
import logging
import os

import torch
from tqdm import tqdm

from maskrcnn_benchmark.data.categories import one_stage_head
from maskrcnn_benchmark.data.datasets.evaluation import evaluate
from maskrcnn_benchmark.data.datasets.image_loading import corrupt_image_policy
from maskrcnn_benchmark.utils.comm import all_gather, get_world_size, is_main_process, synchronize
from maskrcnn_benchmark.utils.timer import Timer, get_time_str


def evaluation_kinds(cfg):
    """(iou_types, box_only) for a config; box_only evaluates region proposals (an RPN-only
    two-stage model), while one-stage detectors, which also set RPN_ONLY, give class boxes."""
    iou_types = ("bbox",) + (("segm",) if cfg.MODEL.MASK_ON else ())
    return iou_types, bool(cfg.MODEL.RPN_ONLY and one_stage_head(cfg) is None)


def compute_on_dataset(model, data_loader, device, bbox_aug=False, timer=None):
    """``{dataset index: BoxList on the CPU}`` for the images this process sees."""
    if bbox_aug:
        raise NotImplementedError("test-time box augmentation (TEST.BBOX_AUG.ENABLED) is not supported; set it to False")
    model.eval()
    results = {}
    cpu = torch.device("cpu")
    for images, _targets, image_ids in tqdm(data_loader, disable=not is_main_process(), desc="inference"):
        if images is None:  # every image of the batch was unreadable and left out
            continue
        with torch.no_grad():
            if timer is not None:
                timer.tic()
            output = model(images.to(device))
            if timer is not None:
                if torch.device(device).type == "cuda":
                    torch.cuda.synchronize()
                timer.toc()
        results.update({image_id: prediction.to(cpu) for image_id, prediction in zip(image_ids, output)})
    return results


def _accumulate_predictions_from_multiple_gpus(predictions_per_gpu, dataset):
    """The predictions as a list indexed like ``dataset``, on the main process (None elsewhere).

    An image without a prediction is an entry of None, which the evaluation leaves out of the
    scored set; that is allowed only for images the dataset dropped as unreadable
    (DATALOADER.SKIP_CORRUPT_IMAGES, whose workers log each file), never to shift the list."""
    gathered = all_gather(predictions_per_gpu)
    if not is_main_process():
        return None
    predictions = {}
    for part in gathered:
        predictions.update(part)  # a padded distributed sampler repeats some images: same result
    missing = [i for i in range(len(dataset)) if i not in predictions]
    if missing and corrupt_image_policy(dataset) != "drop":
        raise RuntimeError("no prediction for {} of {} images (dataset indices {}{}): the evaluation would be "
                           "incomplete".format(len(missing), len(dataset), missing[:10], " ..." if len(missing) > 10 else ""))
    return [predictions.get(i) for i in range(len(dataset))]


def inference(model, data_loader, dataset_name, iou_types=("bbox",), box_only=False, bbox_aug=False,
              device="cuda", expected_results=(), expected_results_sigma_tol=4, output_folder=None,
              coco_evaluator="pycocotools", box_convention=None):
    """Predict on every image of ``data_loader`` (split across processes), then evaluate on the
    main process. Returns the evaluation result (None on the other processes).

    Predictions stay in the network-input frame, masks as the mask head's ``M x M``
    probabilities; the evaluation brings boxes back to the original image size and pastes the
    masks into it (``coco_eval.masks_at_original_size``), one image at a time.
    ``coco_evaluator`` is TEST.COCO_EVALUATOR ("pycocotools" or "faster_coco_eval"); ``box_convention``
    MODEL.BOX_CONVENTION, what the predicted corners mean (None: the default)."""
    logger = logging.getLogger("maskrcnn_benchmark.inference")
    device = torch.device(device)
    dataset = data_loader.dataset
    num_devices = get_world_size()
    logger.info("Start evaluation on %s dataset (%d images).", dataset_name, len(dataset))

    total_timer, inference_timer = Timer(), Timer()
    total_timer.tic()
    predictions = compute_on_dataset(model, data_loader, device, bbox_aug, inference_timer)
    synchronize()
    total_time = total_timer.toc()
    logger.info("Total run time: %s (%.4f s / img per device, on %d devices)",
                get_time_str(total_time), total_time * num_devices / max(len(dataset), 1), num_devices)
    logger.info("Model inference time: %s (%.4f s / img per device, on %d devices)",
                get_time_str(inference_timer.total_time),
                inference_timer.total_time * num_devices / max(len(dataset), 1), num_devices)

    predictions = _accumulate_predictions_from_multiple_gpus(predictions, dataset)
    if not is_main_process():
        return None
    logger.info("Gathered predictions for %d images from %d process(es)",
                sum(p is not None for p in predictions), num_devices)
    if output_folder:
        os.makedirs(output_folder, exist_ok=True)
        torch.save(predictions, os.path.join(output_folder, "predictions.pth"))
    return evaluate(
        dataset=dataset,
        predictions=predictions,
        output_folder=output_folder,
        box_only=box_only,
        iou_types=iou_types,
        expected_results=expected_results,
        expected_results_sigma_tol=expected_results_sigma_tol,
        coco_evaluator=coco_evaluator,
        box_convention=box_convention,
    )
