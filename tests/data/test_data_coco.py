"""COCODataset against the json it reads (generated shapes and the real tiny_coco slice)."""
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from maskrcnn_benchmark.config.paths_catalog import DatasetCatalog, tiny_coco_root
from maskrcnn_benchmark.data.build import build_dataset
from maskrcnn_benchmark.data.datasets import COCODataset
from maskrcnn_benchmark.data.datasets.image_loading import CorruptImageError
from maskrcnn_benchmark.data.datasets.shapes import generate_shapes

TINY = tiny_coco_root()
needs_tiny_coco = pytest.mark.skipif(not os.path.isdir(TINY), reason="tiny_coco is absent")


@pytest.fixture(scope="module")
def shapes_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("shapes")
    generate_shapes(out, num_images=10, seed=21)
    return out


def _tiny(split, train):
    return COCODataset(os.path.join(TINY, "annotations", "instances_{}2017.json".format(split)),
                       os.path.join(TINY, split + "2017"), train)


def _check_against_json(dataset):
    coco = dataset.coco
    json_ids = sorted(coco.getCatIds())
    assert dataset.json_category_id_to_contiguous_id == {j: i + 1 for i, j in enumerate(json_ids)}
    for contiguous, json_id in dataset.contiguous_category_id_to_json_id.items():
        assert dataset.json_category_id_to_contiguous_id[json_id] == contiguous
    for index in range(len(dataset)):
        image, target, returned_index = dataset[index]
        img_id = dataset.id_to_img_map[index]
        info = dataset.get_img_info(index)
        assert returned_index == index and info["id"] == img_id
        assert image.mode == "RGB" and image.size == (info["width"], info["height"]) == target.size
        anns = [a for a in coco.imgToAnns[img_id]
                if not a["iscrowd"] and a["bbox"][2] >= 1 and a["bbox"][3] >= 1]
        expected = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)])
        expected = expected.reshape(-1, 4)
        expected[:, 0::2] = expected[:, 0::2].clamp(0, info["width"])
        expected[:, 1::2] = expected[:, 1::2].clamp(0, info["height"])
        torch.testing.assert_close(target.bbox, expected.float())
        labels = [dataset.json_category_id_to_contiguous_id[a["category_id"]] for a in anns]
        assert target.get_field("labels").tolist() == labels
        masks = target.get_field("masks").instances.convert_to_binarymask().masks
        for ann, mask in zip(anns, masks):
            assert torch.equal(mask, torch.from_numpy(coco.annToMask(ann)))
        crowd = [a for a in coco.imgToAnns[img_id] if a["iscrowd"]]
        assert len(dataset.get_crowd_boxes(index)) == len(crowd)


def test_shapes_boxes_labels_masks_equal_the_json(shapes_dir):
    dataset = COCODataset(str(shapes_dir / "annotations.json"), str(shapes_dir / "images"), True)
    assert len(dataset) == 10
    _check_against_json(dataset)


@needs_tiny_coco
@pytest.mark.parametrize("split", ["train", "val"])
def test_tiny_coco_boxes_labels_masks_equal_the_json(split):
    train, test = _tiny(split, True), _tiny(split, False)
    with open(os.path.join(TINY, "annotations", "instances_{}2017.json".format(split))) as f:
        raw = json.load(f)
    assert len(test) == len(raw["images"])  # testing keeps every image
    with_boxes = {a["image_id"] for a in raw["annotations"]
                  if not a["iscrowd"] and a["bbox"][2] >= 1 and a["bbox"][3] >= 1}
    assert len(train) == len(with_boxes) < len(test)
    assert len(train.contiguous_category_id_to_json_id) == len(raw["categories"]) == 80
    _check_against_json(train)


@needs_tiny_coco
def test_tiny_coco_crowd_regions_are_kept_apart():
    dataset = _tiny("train", True)
    crowd_images = [i for i in range(len(dataset)) if len(dataset.get_crowd_boxes(i))]
    assert crowd_images, "tiny_coco train has crowd annotations"
    total = sum(len(dataset.get_crowd_boxes(i)) for i in range(len(dataset)))
    assert total == sum(1 for a in dataset.coco.anns.values() if a["iscrowd"])


def test_catalog_names_resolve():
    assert DatasetCatalog.get("coco_2017_val")["factory"] == "COCODataset"
    assert DatasetCatalog.get("coco_2014_minival")["args"]["ann_file"].endswith(
        "instances_minival2014.json")
    assert DatasetCatalog.get("voc_2007_test")["args"]["split"] == "test"
    with pytest.raises(KeyError, match="coco_2099"):
        DatasetCatalog.get("coco_2099")


def test_missing_files_are_named_with_the_catalog_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("MASKRCNN_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError) as info:
        build_dataset(["coco_2017_val"], None, DatasetCatalog, is_train=False)
    assert "coco_2017_val" in str(info.value) and "instances_val2017.json" in str(info.value)

    with pytest.raises(FileNotFoundError, match="voc_2007_test.*test.txt"):
        build_dataset(["voc_2007_test"], None, DatasetCatalog, is_train=False)


def _copy_split(shapes_dir, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for name in os.listdir(shapes_dir / "images"):
        (images / name).write_bytes((shapes_dir / "images" / name).read_bytes())
    with open(shapes_dir / "annotations.json") as f:
        return images, json.load(f)


def test_missing_image_folder_and_unknown_category_are_named(shapes_dir, tmp_path):
    images, coco = _copy_split(shapes_dir, tmp_path)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        COCODataset(str(shapes_dir / "annotations.json"), str(tmp_path / "nowhere"), True)
    coco["annotations"][0]["category_id"] = 77
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(coco))
    file_name = coco["images"][coco["annotations"][0]["image_id"] - 1]["file_name"]
    with pytest.raises(ValueError, match=r"{}.*category_id 77".format(file_name)):
        COCODataset(str(bad), str(images), True)


def test_corrupt_image_raises_or_is_skipped(shapes_dir, tmp_path):
    images, coco = _copy_split(shapes_dir, tmp_path)
    data = (images / "000002.png").read_bytes()
    (images / "000002.png").write_bytes(data[: len(data) // 3])  # truncated
    dataset = COCODataset(str(shapes_dir / "annotations.json"), str(images), False)
    with pytest.raises(CorruptImageError, match="000002.png"):
        dataset[2]
    dataset.skip_corrupt_images = True
    _, target, index = dataset[2]
    assert index == 3 and len(target) == len(dataset.coco.imgToAnns[4])


@pytest.mark.parametrize("mode", ["L", "RGBA", "P"])
def test_grayscale_rgba_palette_become_rgb(shapes_dir, tmp_path, mode):
    images, _ = _copy_split(shapes_dir, tmp_path)
    original = Image.open(images / "000000.png")
    original.convert(mode).save(images / "000000.png")
    dataset = COCODataset(str(shapes_dir / "annotations.json"), str(images), False)
    image, _, _ = dataset[0]
    assert image.mode == "RGB" and image.size == original.size
    if mode == "L":
        pixels = np.asarray(image)
        assert (pixels[..., 0] == pixels[..., 1]).all()
