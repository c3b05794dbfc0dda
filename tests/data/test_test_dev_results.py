"""COCO test-dev: the catalog entry, and the results file of the evaluation server written by the
inference path for a split without annotations (an image-info json)."""
import json

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from PIL import Image

from maskrcnn_benchmark.config import cfg as default_cfg
from maskrcnn_benchmark.config.paths_catalog import DatasetCatalog
from maskrcnn_benchmark.data import make_data_loader
from maskrcnn_benchmark.engine.inference import inference
from maskrcnn_benchmark.structures.bounding_box import BoxList

CATEGORIES = [{"id": 3, "name": "car"}, {"id": 18, "name": "dog"}, {"id": 90, "name": "toothbrush"}]
SIZES = {101: (64, 48), 205: (40, 80)}  # image id -> (width, height)


@pytest.fixture
def test_dev_root(tmp_path, monkeypatch):
    (tmp_path / "coco" / "test2017").mkdir(parents=True)
    (tmp_path / "coco" / "annotations").mkdir()
    images = []
    for image_id, (width, height) in SIZES.items():
        name = "{:012d}.jpg".format(image_id)
        Image.fromarray(np.full((height, width, 3), 90, np.uint8)).save(tmp_path / "coco" / "test2017" / name)
        images.append({"id": image_id, "file_name": name, "width": width, "height": height})
    info = {"info": {"description": "test-dev"}, "images": images, "categories": CATEGORIES}
    (tmp_path / "coco" / "annotations" / "image_info_test-dev2017.json").write_text(json.dumps(info))
    monkeypatch.setenv("MASKRCNN_DATA_DIR", str(tmp_path))
    return tmp_path


class _FixedDetector(torch.nn.Module):
    """Two detections an image, in the network-input frame: a box over the top-left quarter
    (label 1) and one over the bottom-right quarter (label 3), with 28 x 28 masks."""

    def forward(self, images):
        outputs = []
        for height, width in images.image_sizes:
            boxes = BoxList(torch.tensor([[0, 0, width / 2, height / 2], [width / 2, height / 2, width, height]]),
                            (width, height))
            boxes.add_field("labels", torch.tensor([1, 3]))
            boxes.add_field("scores", torch.tensor([0.9, 0.4]))
            boxes.add_field("mask", torch.ones(2, 1, 28, 28))
            outputs.append(boxes)
        return outputs


def test_catalog_entry_is_the_image_info_json():
    entry = DatasetCatalog.get("coco_2017_test_dev")
    assert entry["factory"] == "COCODataset"
    assert entry["args"]["ann_file"].endswith("coco/annotations/image_info_test-dev2017.json")
    assert entry["args"]["root"].endswith("coco/test2017")


def test_inference_writes_the_server_results_files(test_dev_root, tmp_path):
    cfg = default_cfg.clone()
    cfg.merge_from_list(["DATASETS.TEST", ("coco_2017_test_dev",), "INPUT.MIN_SIZE_TEST", 100,
                         "INPUT.MAX_SIZE_TEST", 400, "DATALOADER.NUM_WORKERS", 0, "TEST.IMS_PER_BATCH", 2,
                         "MODEL.MASK_ON", True, "MODEL.ROI_BOX_HEAD.NUM_CLASSES", 4])
    loader = make_data_loader(cfg, is_train=False)[0]
    assert not loader.dataset.has_annotations and len(loader.dataset) == 2
    output = tmp_path / "my_method" / "inference" / "coco_2017_test_dev"
    results, _ = inference(_FixedDetector(), loader, "coco_2017_test_dev", iou_types=("bbox", "segm"),
                           device="cpu", output_folder=str(output))
    assert results["bbox"]["AP"] == -1  # nothing is scored without annotations
    assert not (output / "metrics.json").exists()

    boxes = json.loads((output / "detections_test-dev2017_my_method_results.json").read_text())
    masks = json.loads((output / "detections_test-dev2017_my_method-segm_results.json").read_text())
    assert len(boxes) == len(masks) == 4
    for entry in boxes:
        assert set(entry) == {"image_id", "category_id", "bbox", "score"}
        width, height = SIZES[entry["image_id"]]
        # original COCO ids (1 -> 3, 3 -> 90) and xywh boxes at the original image size; the corners are
        # inclusive (the default box convention), so a box is one pixel wider than x2 - x1
        expected = {3: [0, 0, width / 2 + 1, height / 2 + 1], 90: [width / 2, height / 2, width / 2 + 1, height / 2 + 1]}
        assert entry["bbox"] == pytest.approx(expected[entry["category_id"]], abs=1e-3)
        assert entry["score"] == pytest.approx({3: 0.9, 90: 0.4}[entry["category_id"]])
    for entry in masks:
        assert set(entry) == {"image_id", "category_id", "segmentation", "score"}
        width, height = SIZES[entry["image_id"]]
        rle = dict(entry["segmentation"], counts=entry["segmentation"]["counts"].encode())
        decoded = mask_util.decode(rle)
        assert decoded.shape == (height, width)
        # a mask of ones pasted over a quarter of the image covers that quarter
        assert decoded.sum() == pytest.approx(width * height / 4, rel=0.15)
