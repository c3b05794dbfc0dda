"""Mask AP from the mask head's M x M probabilities: the evaluation pastes them into the ORIGINAL
image at the boxes, whatever the test resize; already-pasted masks are taken as they are."""
import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from pycocotools.cocoeval import COCOeval

from maskrcnn_benchmark.data.datasets import COCODataset
from maskrcnn_benchmark.data.datasets.evaluation import evaluate
from maskrcnn_benchmark.data.datasets.evaluation.coco.coco_eval import prepare_for_coco_segmentation
from maskrcnn_benchmark.data.datasets.shapes import generate_shapes
from maskrcnn_benchmark.modeling.roi_heads.mask_head.inference import Masker
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.segmentation_mask import SegmentationMask

M = 28


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    out = tmp_path_factory.mktemp("shapes_masks")
    return COCODataset(generate_shapes(out, num_images=8, seed=11), str(out / "images"), False)


def _head_like_predictions(dataset, scale):
    """Per image, the ground truth as a mask head would give it for a test resize of ``scale``:
    boxes in the resized frame, each object's polygon cropped to its box and rasterised at M x M."""
    predictions = []
    for index in range(len(dataset)):
        info = dataset.get_img_info(index)
        anns = [a for a in dataset.coco.imgToAnns[dataset.id_to_img_map[index]] if not a["iscrowd"]]
        size = (info["width"], info["height"])
        boxes = BoxList(torch.tensor([a["bbox"] for a in anns], dtype=torch.float32), size, mode="xywh").convert("xyxy")
        masks = SegmentationMask([a["segmentation"] for a in anns], size)
        probabilities = torch.stack([masks[i].crop(box.tolist()).resize((M, M)).get_mask_tensor().float()
                                     for i, box in enumerate(boxes.bbox)])[:, None]
        boxes.add_field("scores", torch.linspace(1.0, 0.5, len(anns)))
        boxes.add_field("labels", torch.tensor([dataset.json_category_id_to_contiguous_id[a["category_id"]]
                                                for a in anns]))
        boxes.add_field("mask", probabilities)
        predictions.append(boxes.resize((round(info["width"] * scale), round(info["height"] * scale))))
    return predictions


@pytest.mark.parametrize("scale", [1.0, 0.5, 1.75])
def test_m_by_m_masks_are_pasted_at_the_original_size(shapes, scale, tmp_path):
    predictions = _head_like_predictions(shapes, scale)
    results, coco_results = evaluate(shapes, predictions, str(tmp_path), iou_types=("bbox", "segm"))
    for result in coco_results["segm"]:
        info = shapes.coco.imgs[result["image_id"]]
        assert result["segmentation"]["size"] == [info["height"], info["width"]]
    # boxes are the ground truth; the masks went through 28 x 28 and back, so they are close to it
    assert results["bbox"]["AP"] == pytest.approx(1.0, abs=1e-6)
    assert results["segm"]["AP50"] == pytest.approx(1.0, abs=1e-6)
    assert results["segm"]["AP"] > 0.8


def test_test_resize_does_not_change_the_pasted_masks(shapes):
    """The same M x M masks give (nearly) the same pixels at the original size whatever frame the
    boxes were predicted in; the box resize rounds to whole pixels, hence IoU and not equality."""
    at_scale = {scale: prepare_for_coco_segmentation(_head_like_predictions(shapes, scale), shapes)
                for scale in (1.0, 0.5, 1.75)}
    for a, b, c in zip(at_scale[1.0], at_scale[0.5], at_scale[1.75]):
        for other in (b, c):
            iou = mask_util.iou([a["segmentation"]], [other["segmentation"]], [0])[0, 0]
            assert iou > 0.9


def test_segm_ap_matches_pycocotools_on_the_same_pasted_masks(shapes):
    predictions = _head_like_predictions(shapes, 0.5)
    results, _ = evaluate(shapes, predictions, None, iou_types=("segm",))
    # paste by hand with the Masker at the original size, encode, and score with pycocotools alone
    hand = []
    masker = Masker(threshold=0.5, padding=1)
    for index, prediction in enumerate(predictions):
        info = shapes.get_img_info(index)
        original = prediction.resize((info["width"], info["height"]))
        pasted = masker([prediction.get_field("mask")], [original])[0][:, 0].numpy()
        for mask, score, label in zip(pasted, prediction.get_field("scores").tolist(),
                                      prediction.get_field("labels").tolist()):
            rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
            hand.append({"image_id": info["id"], "category_id": int(label), "score": score, "segmentation": rle})
    coco_eval = COCOeval(shapes.coco, shapes.coco.loadRes(hand), "segm")
    coco_eval.evaluate()
    coco_eval.accumulate()
    coco_eval.summarize()
    assert results["segm"]["AP"] == pytest.approx(coco_eval.stats[0], abs=1e-9)


def test_masks_pasted_in_the_network_input_are_resampled(shapes):
    """MODEL.ROI_MASK_HEAD.POSTPROCESS_MASKS pastes into the resized image: still scored right."""
    predictions = _head_like_predictions(shapes, 0.5)
    for prediction in predictions:
        prediction.add_field("mask", Masker(0.5, 1)([prediction.get_field("mask")], [prediction])[0])
    results, _ = evaluate(shapes, predictions, None, iou_types=("segm",))
    assert results["segm"]["AP50"] == pytest.approx(1.0, abs=1e-6) and results["segm"]["AP"] > 0.6
