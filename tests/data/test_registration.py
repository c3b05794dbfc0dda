"""Datasets of one's own by name, without editing paths_catalog.py: from Python
(register_coco_instances / register_voc_instances), from a yaml file and from the command line
(DATASETS.REGISTER)."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from maskrcnn_benchmark.config.paths_catalog import DatasetCatalog
from maskrcnn_benchmark.data import make_data_loader
from maskrcnn_benchmark.data.build import build_dataset
from maskrcnn_benchmark.data.datasets import COCODataset, PascalVOCDataset, register_coco_instances
from maskrcnn_benchmark.engine.launch import load_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHAPES_CONFIG = os.path.join(ROOT, "configs", "shapes", "faster_rcnn_R_18_FPN_shapes.yaml")


def _coco_split(folder, num_images=3):
    (folder / "pictures").mkdir(parents=True)
    images, annotations = [], []
    for i in range(1, num_images + 1):
        Image.fromarray(np.full((32, 48, 3), 40 * i, np.uint8)).save(folder / "pictures" / "p{}.png".format(i))
        images.append({"id": i, "file_name": "p{}.png".format(i), "width": 48, "height": 32})
        annotations.append({"id": i, "image_id": i, "category_id": 7, "bbox": [4, 4, 20, 12], "area": 240,
                            "iscrowd": 0, "segmentation": [[4, 4, 24, 4, 24, 16, 4, 16]]})
    coco = {"images": images, "annotations": annotations, "categories": [{"id": 7, "name": "widget"}]}
    (folder / "labels.json").write_text(json.dumps(coco))
    return folder / "labels.json", folder / "pictures"


def _voc_split(folder, classes=("Widget", "gadget")):
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (folder / sub).mkdir(parents=True)
    Image.new("RGB", (48, 32)).save(folder / "JPEGImages" / "x.jpg")
    (folder / "Annotations" / "x.xml").write_text(
        "<annotation><size><width>48</width><height>32</height></size><object><name>{}</name><difficult>0"
        "</difficult><bndbox><xmin>3</xmin><ymin>3</ymin><xmax>20</xmax><ymax>20</ymax></bndbox></object>"
        "</annotation>".format(classes[0]))
    (folder / "ImageSets" / "Main" / "train.txt").write_text("x\n")
    return folder


def test_register_coco_instances_from_python(tmp_path):
    json_file, image_root = _coco_split(tmp_path)
    register_coco_instances("reg_python_coco", {"thing_classes": ["widget"]}, json_file, image_root)
    assert "reg_python_coco" in DatasetCatalog.names()
    dataset = build_dataset(["reg_python_coco"], None, DatasetCatalog, is_train=True)[0]
    assert isinstance(dataset, COCODataset) and len(dataset) == 3
    assert dataset.metadata == {"thing_classes": ["widget"]}
    _, target, _ = dataset[1]
    assert target.get_field("labels").tolist() == [1]


def test_register_from_a_yaml_file_then_train_and_test_loaders(tmp_path):
    json_file, image_root = _coco_split(tmp_path)
    yaml = tmp_path / "mine.yaml"
    yaml.write_text('_BASE_: "{}"\nMODEL:\n  ROI_BOX_HEAD:\n    NUM_CLASSES: 2\nDATASETS:\n  REGISTER: ("reg_yaml={}",)\n'
                    '  TRAIN: ("reg_yaml",)\n  TEST: ("reg_yaml",)\nSOLVER:\n  IMS_PER_BATCH: 2\n  MAX_ITER: 2\n'.format(
                        SHAPES_CONFIG, "coco:{}:{}".format(json_file, image_root)))
    cfg = load_config(str(yaml), [])
    images, targets, indices = next(iter(make_data_loader(cfg, is_train=True)))
    assert len(targets) == 2 and all(t.get_field("labels").tolist() == [1] for t in targets)
    test_loader = make_data_loader(cfg, is_train=False)[0]
    assert len(test_loader.dataset) == 3


def test_register_from_the_command_line_with_relative_paths(tmp_path, monkeypatch):
    _coco_split(tmp_path / "data")
    monkeypatch.chdir(tmp_path)  # relative paths are taken from the current directory
    cfg = load_config(SHAPES_CONFIG, ["DATASETS.REGISTER", "('reg_cli=coco:data/labels.json:data/pictures',)",
                                      "DATASETS.TEST", "('reg_cli',)"])
    entry = DatasetCatalog.get("reg_cli")
    assert entry["args"]["ann_file"] == str(tmp_path / "data" / "labels.json")
    assert "reg_cli" in entry["source"]
    assert len(build_dataset(["reg_cli"], None, DatasetCatalog, is_train=False)[0]) == 3


def test_register_a_voc_layout_dataset_with_its_own_classes(tmp_path):
    root = _voc_split(tmp_path / "MyVOC")
    cfg = load_config(SHAPES_CONFIG, ["DATASETS.REGISTER", "('reg_voc=voc:{}:train:Widget,gadget',)".format(root),
                                      "DATASETS.TRAIN", "('reg_voc',)", "MODEL.ROI_BOX_HEAD.NUM_CLASSES", "3",
                                      "SOLVER.IMS_PER_BATCH", "1", "SOLVER.MAX_ITER", "1"])
    loader = make_data_loader(cfg, is_train=True)
    assert isinstance(loader.dataset, PascalVOCDataset)
    assert loader.dataset.CLASSES == ("__background__", "Widget", "gadget")
    _, targets, _ = next(iter(loader))
    assert targets[0].get_field("labels").tolist() == [1]
    # the class count of the registration is what NUM_CLASSES is checked against
    small = load_config(SHAPES_CONFIG, ["DATASETS.REGISTER", "('reg_voc=voc:{}:train:Widget,gadget',)".format(root),
                                        "DATASETS.TRAIN", "('reg_voc',)", "MODEL.ROI_BOX_HEAD.NUM_CLASSES", "2"])
    with pytest.raises(ValueError, match=r"NUM_CLASSES is 2, but dataset 'reg_voc' has 2 categories"):
        make_data_loader(small, is_train=True)


def test_missing_file_of_a_registration_names_the_registration(tmp_path):
    cfg = load_config(SHAPES_CONFIG, ["DATASETS.REGISTER", "('reg_missing=coco:{}:{}',)".format(
        tmp_path / "nowhere.json", tmp_path), "DATASETS.TEST", "('reg_missing',)"])
    with pytest.raises(FileNotFoundError, match=r"nowhere.json.*DATASETS.REGISTER entry 'reg_missing=coco"):
        make_data_loader(cfg, is_train=False)
