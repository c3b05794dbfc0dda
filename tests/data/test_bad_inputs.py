"""Bad inputs and faults a user meets with real datasets: each case gives the correct result or an
error that names the culprit (file, image, annotation, key, value), and loses nothing silently.
docs/RELIABILITY.md ("Data, evaluation and inference") lists the cases and what each does."""
import json
import logging
import os

import numpy as np
import pytest
import torch
from PIL import Image

from maskrcnn_benchmark.config import cfg as default_cfg
from maskrcnn_benchmark.config.paths_catalog import DatasetCatalog
from maskrcnn_benchmark.data import make_data_loader
from maskrcnn_benchmark.data.build import build_dataset
from maskrcnn_benchmark.data.categories import active_num_classes_key, check_num_classes
from maskrcnn_benchmark.data.datasets import COCODataset, PascalVOCDataset
from maskrcnn_benchmark.data.datasets.evaluation import evaluate
from maskrcnn_benchmark.data.datasets.image_loading import CorruptImageError, ImageSizeMismatchError, read_image
from maskrcnn_benchmark.data.datasets.registration import parse_registration, register_coco_instances
from maskrcnn_benchmark.data.transforms import Resize
from maskrcnn_benchmark.engine.inference import inference
from maskrcnn_benchmark.structures.bounding_box import BoxList

SIZE = (40, 30)  # width, height of the images written here


def _square(x, y, side):
    return [[x, y, x + side, y, x + side, y + side, x, y + side]]


def _ann(ann_id, image_id, category_id, x, y, side, **extra):
    ann = {"id": ann_id, "image_id": image_id, "category_id": category_id, "bbox": [x, y, side, side],
           "area": side * side, "iscrowd": 0, "segmentation": _square(x, y, side)}
    ann.update(extra)
    return ann


def _write_coco(folder, annotations, num_images=2, categories=None, images=None, name="ann.json"):
    """Images ``1..num_images`` (uniform grey levels, distinct per image) and a json."""
    image_dir = folder / "images"
    image_dir.mkdir(exist_ok=True)
    if images is None:
        images = [{"id": i, "file_name": "{}.png".format(i), "width": SIZE[0], "height": SIZE[1]}
                  for i in range(1, num_images + 1)]
    for image in images:
        path = image_dir / image["file_name"]
        if not path.exists():
            Image.fromarray(np.full((SIZE[1], SIZE[0], 3), 20 * image["id"] % 256, np.uint8)).save(path)
    coco = {"images": images, "annotations": annotations,
            "categories": categories or [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}
    (folder / name).write_text(json.dumps(coco))
    return str(folder / name), str(image_dir)


def _dataset(folder, annotations, train=False, **kwargs):
    ann_file, image_dir = _write_coco(folder, annotations, **kwargs)
    return COCODataset(ann_file, image_dir, train)


def _gt_predictions(dataset):
    """The ground truth of every image as detections (score 1 .. 0.5), original frame."""
    predictions = []
    for index in range(len(dataset)):
        info = dataset.get_img_info(index)
        anns = [a for a in dataset.coco.imgToAnns[info["id"]] if not a.get("iscrowd", 0)]
        boxes = BoxList(torch.tensor([a["bbox"] for a in anns], dtype=torch.float32).reshape(-1, 4),
                        (info["width"], info["height"]), mode="xywh").convert("xyxy")
        boxes.add_field("scores", torch.linspace(1.0, 0.5, len(anns)))
        boxes.add_field("labels", torch.tensor([dataset.json_category_id_to_contiguous_id[a["category_id"]]
                                                for a in anns], dtype=torch.int64))
        predictions.append(boxes)
    return predictions


# ---------------------------------------------------------------- image files

def test_truncated_jpeg_is_a_corrupt_image_naming_the_file(tmp_path):
    path = tmp_path / "photo.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:600])
    with pytest.raises(CorruptImageError, match="photo.jpg"):
        read_image(path)


def test_a_text_file_named_like_an_image_is_corrupt(tmp_path):
    (tmp_path / "fake.png").write_text("not an image")
    with pytest.raises(CorruptImageError, match="fake.png"):
        read_image(tmp_path / "fake.png")


def test_image_that_is_a_directory_is_named_at_build(tmp_path):
    ann_file, image_dir = _write_coco(tmp_path, [_ann(1, 1, 1, 2, 2, 10)], num_images=1)
    os.remove(os.path.join(image_dir, "1.png"))
    os.mkdir(os.path.join(image_dir, "1.png"))
    with pytest.raises(IsADirectoryError, match="1.png"):
        COCODataset(ann_file, image_dir, False)
    with pytest.raises(IsADirectoryError, match="directory"):
        read_image(os.path.join(image_dir, "1.png"))


def test_missing_image_files_are_counted_and_named_at_build(tmp_path):
    ann_file, image_dir = _write_coco(tmp_path, [_ann(1, 1, 1, 2, 2, 10)], num_images=3)
    os.remove(os.path.join(image_dir, "2.png"))
    with pytest.raises(FileNotFoundError, match=r"1 of 3 image files are missing.*2.png"):
        COCODataset(ann_file, image_dir, False)


def test_image_larger_than_pil_allows_names_the_limit(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.fromarray(np.zeros((100, 100, 3), np.uint8)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 10,000 pixels is over twice the limit
    with pytest.raises(CorruptImageError, match=r"big.png.*MAX_IMAGE_PIXELS"):
        read_image(path)


@pytest.mark.parametrize("size", [(1, 1), (1, 3000), (3000, 1)])
def test_tiny_and_extreme_images_resize_to_at_least_one_pixel(size):
    image = Image.new("RGB", size)
    resized, _ = Resize(800, 1333)(image)
    assert min(resized.size) >= 1 and max(resized.size) <= 1333


def test_size_in_json_different_from_the_file_stops_with_both_sizes(tmp_path):
    images = [{"id": 1, "file_name": "1.png", "width": 80, "height": 60}]
    dataset = _dataset(tmp_path, [_ann(1, 1, 1, 2, 2, 10)], images=images)
    with pytest.raises(ImageSizeMismatchError, match=r"1.png.*80x60.*40x30"):
        dataset[0]


def test_exif_rotated_file_annotated_on_the_stored_frame_is_explained(tmp_path):
    (tmp_path / "images").mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned by a quarter: a 40 x 30 bitmap displays as 30 x 40
    Image.fromarray(np.zeros((SIZE[1], SIZE[0], 3), np.uint8)).save(tmp_path / "images" / "1.png", exif=exif.tobytes())
    dataset = _dataset(tmp_path, [_ann(1, 1, 1, 2, 2, 10)], num_images=1)  # json: the stored 40 x 30
    with pytest.raises(ImageSizeMismatchError, match=r"swapped.*EXIF orientation"):
        dataset[0]


# ---------------------------------------------------------------- annotation json

def test_unknown_category_id_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"annotation 7 of image 1.png.*category_id 5"):
        _dataset(tmp_path, [_ann(7, 1, 5, 2, 2, 10)])


def test_duplicate_image_ids_are_named(tmp_path):
    images = [{"id": 4, "file_name": n, "width": SIZE[0], "height": SIZE[1]} for n in ("a.png", "b.png")]
    with pytest.raises(ValueError, match=r"image ids 4 appear more than once"):
        _dataset(tmp_path, [], images=images)


def test_duplicate_annotation_ids_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"annotation ids 3 appear more than once"):
        _dataset(tmp_path, [_ann(3, 1, 1, 2, 2, 10), _ann(3, 2, 1, 5, 5, 10)])


def test_annotation_of_an_unknown_image_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"annotation 1 refers to image_id 99"):
        _dataset(tmp_path, [_ann(1, 99, 1, 2, 2, 10)])


def test_non_finite_or_malformed_box_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"annotation 1 .*bbox \[2, nan, 10, 10\]"):
        _dataset(tmp_path, [dict(_ann(1, 1, 1, 2, 2, 10), bbox=[2, float("nan"), 10, 10])])
    with pytest.raises(ValueError, match=r"annotation 2 .*bbox \[2, 3\]"):
        _dataset(tmp_path, [dict(_ann(2, 1, 1, 2, 2, 10), bbox=[2, 3])])


def test_box_entirely_outside_the_image_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"annotation 1 of image 1.png.*entirely outside the 40x30 image"):
        _dataset(tmp_path, [_ann(1, 1, 1, 45, 5, 10)])


def test_box_partly_outside_the_image_is_clipped(tmp_path):
    dataset = _dataset(tmp_path, [_ann(1, 1, 1, 35, 25, 10)], train=True)
    _, target, _ = dataset[0]
    torch.testing.assert_close(target.bbox, torch.tensor([[35.0, 25.0, 40.0, 30.0]]))


def test_zero_area_and_negative_boxes_are_dropped_from_training_and_logged(tmp_path, caplog):
    anns = [_ann(1, 1, 1, 2, 2, 10), dict(_ann(2, 1, 2, 5, 5, 10), bbox=[5, 5, 0, 10]),
            dict(_ann(3, 1, 2, 5, 5, 10), bbox=[5, 5, 10, -4])]
    with caplog.at_level(logging.INFO):
        dataset = _dataset(tmp_path, anns, train=True)
    _, target, _ = dataset[0]
    assert target.get_field("labels").tolist() == [1]
    assert "dropped 2 boxes" in caplog.text


def test_image_without_a_size_is_named(tmp_path):
    images = [{"id": 1, "file_name": "1.png"}]
    (tmp_path / "images").mkdir()
    Image.new("RGB", SIZE).save(tmp_path / "images" / "1.png")
    with pytest.raises(ValueError, match=r"images 1.png have no positive 'width' and 'height'"):
        _dataset(tmp_path, [], images=images)


def test_json_without_categories_is_named(tmp_path):
    ann_file, image_dir = _write_coco(tmp_path, [], num_images=1)
    raw = json.loads(open(ann_file).read())
    raw["categories"] = []
    open(ann_file, "w").write(json.dumps(raw))
    with pytest.raises(ValueError, match=r"ann.json has no categories"):
        COCODataset(ann_file, image_dir, False)


def test_segmentation_of_a_wrong_type_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"annotation 1 of image 1 .*segmentation must be"):
        _dataset(tmp_path, [dict(_ann(1, 1, 1, 2, 2, 10), segmentation="square")])


def test_non_contiguous_and_zero_category_ids_keep_their_json_ids(tmp_path):
    categories = [{"id": 0, "name": "zero"}, {"id": 42, "name": "answer"}, {"id": 1000, "name": "big"}]
    anns = [_ann(1, 1, 0, 2, 2, 10), _ann(2, 1, 1000, 20, 10, 12), _ann(3, 2, 42, 5, 5, 20)]
    dataset = _dataset(tmp_path, anns, categories=categories)
    assert dataset.json_category_id_to_contiguous_id == {0: 1, 42: 2, 1000: 3}
    _, target, _ = dataset[0]
    assert target.get_field("labels").tolist() == [1, 3]
    results, coco_results = evaluate(dataset, _gt_predictions(dataset), None, iou_types=("bbox",))
    assert results["bbox"]["AP"] == pytest.approx(1.0)
    assert sorted({r["category_id"] for r in coco_results["bbox"]}) == [0, 42, 1000]


def test_category_without_annotations_has_no_nan_row(tmp_path):
    categories = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}, {"id": 3, "name": "never seen"}]
    dataset = _dataset(tmp_path, [_ann(1, 1, 1, 2, 2, 10), _ann(2, 2, 2, 5, 5, 10)], categories=categories)
    results, _ = evaluate(dataset, _gt_predictions(dataset), str(tmp_path / "out"), iou_types=("bbox",))
    assert results.per_class["bbox"] == {"a": pytest.approx(1.0), "b": pytest.approx(1.0)}
    written = json.loads((tmp_path / "out" / "metrics.json").read_text())["per_class_ap"]["bbox"]
    assert set(written) == {"a", "b"} and all(value == value for value in written.values())


def test_crowd_only_image_is_left_out_of_training_and_kept_for_testing(tmp_path):
    anns = [_ann(1, 1, 1, 2, 2, 10), _ann(2, 2, 1, 5, 5, 10, iscrowd=1)]
    train = _dataset(tmp_path, anns, train=True)
    test = COCODataset(str(tmp_path / "ann.json"), str(tmp_path / "images"), False)
    assert [train.id_to_img_map[i] for i in range(len(train))] == [1]
    assert len(test) == 2 and len(test[1][1]) == 0 and len(test.get_crowd_boxes(1)) == 1


def test_images_without_annotations_are_kept_for_testing_only(tmp_path):
    dataset = _dataset(tmp_path, [_ann(1, 1, 1, 2, 2, 10)], num_images=3, train=True)
    assert len(dataset) == 1
    assert len(COCODataset(str(tmp_path / "ann.json"), str(tmp_path / "images"), False)) == 3


def test_training_set_without_any_annotated_image_is_named(tmp_path):
    register_coco_instances("bad_inputs_empty_train", {}, *_write_coco(tmp_path, [], num_images=2))
    with pytest.raises(ValueError, match=r"bad_inputs_empty_train.*no image with a usable annotation"):
        build_dataset(["bad_inputs_empty_train"], None, DatasetCatalog, is_train=True)


def test_non_crowd_rle_segmentation_is_accepted(tmp_path):
    mask = np.zeros((SIZE[1], SIZE[0]), np.uint8)
    mask[4:12, 6:16] = 1
    import pycocotools.mask as mask_util

    rle = mask_util.encode(np.asfortranarray(mask))
    rle["counts"] = rle["counts"].decode()
    dataset = _dataset(tmp_path, [dict(_ann(1, 1, 1, 6, 4, 10), segmentation=rle, bbox=[6, 4, 10, 8])], train=True)
    _, target, _ = dataset[0]
    assert torch.equal(target.get_field("masks").get_mask_tensor(), torch.from_numpy(mask))


# ---------------------------------------------------------------- polygons of fewer than 3 points

def test_degenerate_polygon_parts_are_dropped_for_training_and_evaluation_alike(tmp_path, caplog):
    # a 2-point part first: pycocotools would read the whole annotation as a box list
    square = _square(2, 2, 10)[0]
    anns = [dict(_ann(1, 1, 1, 2, 2, 10), segmentation=[[2, 2, 12, 12], square]), _ann(2, 2, 2, 5, 5, 10)]
    with caplog.at_level(logging.WARNING):
        dataset = _dataset(tmp_path, anns)
    assert "removed 1 polygon parts" in caplog.text and dataset.annotations_without_mask == []
    _, target, _ = dataset[0]
    assert len(target.get_field("masks").instances.polygons[0]) == 1
    predictions = _gt_predictions(dataset)
    for prediction, index in zip(predictions, range(len(dataset))):
        masks = target.get_field("masks") if index == 0 else dataset[1][1].get_field("masks")
        prediction.add_field("mask", masks.get_mask_tensor().reshape(len(prediction), 1, SIZE[1], SIZE[0]))
    results, _ = evaluate(dataset, predictions, None, iou_types=("bbox", "segm"))
    assert results["segm"]["AP"] == pytest.approx(1.0)


def test_annotation_left_without_any_polygon_is_box_only(tmp_path):
    anns = [dict(_ann(1, 1, 1, 2, 2, 10), segmentation=[[2, 2, 12, 12]]), _ann(2, 2, 2, 5, 5, 10)]
    ann_file, image_dir = _write_coco(tmp_path, anns)
    dataset = COCODataset(ann_file, image_dir, False)
    assert dataset.annotations_without_mask == [1]
    # boxes are still scored ...
    results, _ = evaluate(dataset, _gt_predictions(dataset), None, iou_types=("bbox",))
    assert results["bbox"]["AP"] == pytest.approx(1.0)
    # ... but a mask model refuses the dataset when its loader is built, naming the annotation
    register_coco_instances("bad_inputs_box_only", {}, ann_file, image_dir)
    cfg = default_cfg.clone()
    cfg.merge_from_list(["MODEL.MASK_ON", True, "MODEL.ROI_BOX_HEAD.NUM_CLASSES", 3, "DATASETS.TEST",
                         ("bad_inputs_box_only",), "DATALOADER.NUM_WORKERS", 0])
    with pytest.raises(ValueError, match=r"MODEL.MASK_ON.*1 annotations of dataset 'bad_inputs_box_only'.*ids 1"):
        make_data_loader(cfg, is_train=False)
    with pytest.raises(ValueError, match=r"cannot score masks.*ids 1"):
        evaluate(dataset, _gt_predictions(dataset), None, iou_types=("segm",))


# ---------------------------------------------------------------- NUM_CLASSES

HEADS = {"ROI_BOX_HEAD": [], "RETINANET": ["MODEL.RETINANET_ON", True], "FCOS": ["MODEL.FCOS_ON", True],
         "ATSS": ["MODEL.ATSS_ON", True], "PAA": ["MODEL.PAA_ON", True]}


@pytest.mark.parametrize("head", list(HEADS))
def test_num_classes_smaller_than_the_dataset_names_key_value_and_dataset(tmp_path, head):
    dataset = _dataset(tmp_path, [_ann(1, 1, 1, 2, 2, 10), _ann(2, 1, 2, 20, 10, 8)])
    cfg = default_cfg.clone()
    cfg.merge_from_list(HEADS[head] + ["MODEL.RPN_ONLY", head != "ROI_BOX_HEAD", "MODEL.{}.NUM_CLASSES".format(head), 2])
    assert active_num_classes_key(cfg) == "MODEL.{}.NUM_CLASSES".format(head)
    with pytest.raises(ValueError, match=r"MODEL.{}.NUM_CLASSES is 2, but dataset 'mine' has 2 categories "
                                         r"\(a, b\).*set MODEL.{}.NUM_CLASSES 3".format(head, head)):
        check_num_classes(cfg, dataset, "mine")
    cfg.merge_from_list(["MODEL.{}.NUM_CLASSES".format(head), 3])
    check_num_classes(cfg, dataset, "mine")


def test_num_classes_is_checked_when_the_loader_is_built(tmp_path):
    register_coco_instances("bad_inputs_two_classes", {}, *_write_coco(tmp_path, [_ann(1, 1, 1, 2, 2, 10)]))
    cfg = default_cfg.clone()
    cfg.merge_from_list(["MODEL.ROI_BOX_HEAD.NUM_CLASSES", 1, "DATASETS.TRAIN", ("bad_inputs_two_classes",),
                         "DATALOADER.NUM_WORKERS", 0, "SOLVER.IMS_PER_BATCH", 1, "SOLVER.MAX_ITER", 1])
    with pytest.raises(ValueError, match=r"MODEL.ROI_BOX_HEAD.NUM_CLASSES is 1.*'bad_inputs_two_classes'"):
        make_data_loader(cfg, is_train=True)


# ---------------------------------------------------------------- corrupt images under SKIP_CORRUPT_IMAGES

class _OracleDetector(torch.nn.Module):
    """Returns the ground truth of the image it is given, found by the image's grey level."""

    def __init__(self, dataset):
        super().__init__()
        self.by_level = {}
        for index, prediction in enumerate(_gt_predictions(dataset)):
            self.by_level[20 * dataset.id_to_img_map[index] % 256] = prediction

    def forward(self, images):
        outputs = []
        for tensor, (height, width) in zip(images.tensors, images.image_sizes):
            level = int(round(float(tensor[0, 0, 0]) * 255))  # TO_BGR255 False, mean 0, std 1
            outputs.append(self.by_level[level].resize((width, height)))
        return outputs


def _skip_cfg(name, skip):
    cfg = default_cfg.clone()
    cfg.merge_from_list(["DATASETS.TEST", (name,), "DATASETS.TRAIN", (name,), "DATALOADER.NUM_WORKERS", 0,
                         "TEST.IMS_PER_BATCH", 2, "INPUT.MIN_SIZE_TEST", SIZE[1], "INPUT.MAX_SIZE_TEST", SIZE[0],
                         "INPUT.TO_BGR255", False, "INPUT.PIXEL_MEAN", [0.0, 0.0, 0.0], "INPUT.PIXEL_STD", [1.0, 1.0, 1.0],
                         "DATALOADER.SKIP_CORRUPT_IMAGES", skip, "MODEL.ROI_BOX_HEAD.NUM_CLASSES", 3,
                         "SOLVER.IMS_PER_BATCH", 1, "SOLVER.MAX_ITER", 4, "INPUT.HORIZONTAL_FLIP_PROB_TRAIN", 0.0])
    return cfg


@pytest.fixture
def dataset_with_a_corrupt_image(tmp_path):
    anns = [_ann(i, i, 1 + i % 2, 2 + i, 3, 10) for i in range(1, 6)]
    ann_file, image_dir = _write_coco(tmp_path, anns, num_images=5)
    data = open(os.path.join(image_dir, "3.png"), "rb").read()
    open(os.path.join(image_dir, "3.png"), "wb").write(data[: len(data) // 2])
    name = "bad_inputs_corrupt_{}".format(abs(hash(str(tmp_path))))
    register_coco_instances(name, {}, ann_file, image_dir)
    return name


def test_evaluation_leaves_a_corrupt_image_out_and_scores_the_others(dataset_with_a_corrupt_image, caplog):
    loader = make_data_loader(_skip_cfg(dataset_with_a_corrupt_image, True), is_train=False)[0]
    clean = COCODataset(loader.dataset.ann_file, loader.dataset.root, False)
    with caplog.at_level(logging.WARNING):
        results, coco_results = inference(_OracleDetector(clean), loader, dataset_with_a_corrupt_image, device="cpu")
    # the four readable images are scored on their own ground truth: AP 1; image 3 is neither
    # predicted nor counted (no other image was scored in its place)
    assert results["bbox"]["AP"] == pytest.approx(1.0)
    assert sorted({r["image_id"] for r in coco_results["bbox"]}) == [1, 2, 4, 5]
    assert "3.png" in caplog.text and "left out of the evaluation" in caplog.text


def test_without_skip_a_corrupt_image_stops_the_evaluation_naming_it(dataset_with_a_corrupt_image):
    loader = make_data_loader(_skip_cfg(dataset_with_a_corrupt_image, False), is_train=False)[0]
    clean = COCODataset(loader.dataset.ann_file, loader.dataset.root, False)
    with pytest.raises(CorruptImageError, match="3.png"):
        inference(_OracleDetector(clean), loader, dataset_with_a_corrupt_image, device="cpu")


def test_training_substitutes_the_next_image_for_a_corrupt_one(dataset_with_a_corrupt_image):
    loader = make_data_loader(_skip_cfg(dataset_with_a_corrupt_image, True), is_train=True)
    dataset = loader.dataset
    _, target, index = dataset[2]  # image id 3 is corrupt: image id 4 comes instead, with its own index
    assert index == 3 and dataset.id_to_img_map[index] == 4 and len(target) == 1


# ---------------------------------------------------------------- VOC

def _write_voc(root, objects_per_image, size=SIZE):
    for sub in ("Annotations", "JPEGImages", os.path.join("ImageSets", "Main")):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    ids = []
    for image_id, objects in objects_per_image.items():
        ids.append(image_id)
        Image.new("RGB", SIZE).save(os.path.join(root, "JPEGImages", image_id + ".jpg"))
        body = "".join("<object><name>{}</name><difficult>{}</difficult><bndbox><xmin>{}</xmin><ymin>{}</ymin>"
                       "<xmax>{}</xmax><ymax>{}</ymax></bndbox></object>".format(*o) for o in objects)
        size_xml = "" if size is None else "<size><width>{}</width><height>{}</height></size>".format(*size)
        with open(os.path.join(root, "Annotations", image_id + ".xml"), "w") as f:
            f.write("<annotation>{}{}</annotation>".format(size_xml, body))
    with open(os.path.join(root, "ImageSets", "Main", "split.txt"), "w") as f:
        f.write("\n".join(ids))


def test_voc_difficult_only_image_has_an_empty_training_target_and_is_ignored_in_evaluation(tmp_path):
    _write_voc(str(tmp_path), {"a": [("dog", 1, 3, 3, 20, 20)], "b": [("cat", 0, 5, 5, 30, 25)]})
    train = PascalVOCDataset(str(tmp_path), "split", use_difficult=False)
    assert len(train[0][1]) == 0 and len(train[1][1]) == 1
    test = PascalVOCDataset(str(tmp_path), "split", use_difficult=True)
    assert test.get_groundtruth(0).get_field("difficult").tolist() == [True]
    # detecting the difficult dog is neither a hit nor a false positive; only the cat counts
    predictions = []
    for index in range(2):
        gt = test.get_groundtruth(index)
        prediction = BoxList(gt.bbox, gt.size)
        prediction.add_field("labels", gt.get_field("labels"))
        prediction.add_field("scores", torch.ones(len(gt)))
        predictions.append(prediction)
    result = evaluate(test, predictions, None)
    assert result["map"] == pytest.approx(1.0)


def test_voc_xml_without_size_or_box_or_with_an_unknown_class_is_named(tmp_path):
    _write_voc(str(tmp_path / "nosize"), {"a": [("dog", 0, 3, 3, 20, 20)]}, size=None)
    with pytest.raises(ValueError, match=r"a.xml: no positive <size>"):
        PascalVOCDataset(str(tmp_path / "nosize"), "split")
    _write_voc(str(tmp_path / "unknown"), {"a": [("dragon", 0, 3, 3, 20, 20)]})
    with pytest.raises(ValueError, match=r"a.xml: unknown class 'dragon'"):
        PascalVOCDataset(str(tmp_path / "unknown"), "split")
    _write_voc(str(tmp_path / "nobox"), {"a": [("dog", 0, 3, 3, 20, 20)]})
    xml = tmp_path / "nobox" / "Annotations" / "a.xml"
    xml.write_text(xml.read_text().replace("<xmin>3</xmin>", ""))
    with pytest.raises(ValueError, match=r"a.xml: object 'dog' has no valid <bndbox>"):
        PascalVOCDataset(str(tmp_path / "nobox"), "split")


def test_voc_split_listing_a_missing_image_is_named_at_build(tmp_path):
    _write_voc(str(tmp_path), {"a": [("dog", 0, 3, 3, 20, 20)], "b": [("cat", 0, 3, 3, 20, 20)]})
    os.remove(tmp_path / "JPEGImages" / "b.jpg")
    with pytest.raises(FileNotFoundError, match=r"1 of 2 images are missing.*b.jpg"):
        PascalVOCDataset(str(tmp_path), "split")


def test_voc_image_of_another_size_than_its_xml_is_named(tmp_path):
    _write_voc(str(tmp_path), {"a": [("dog", 0, 3, 3, 20, 20)]}, size=(50, 30))
    with pytest.raises(ImageSizeMismatchError, match=r"a.jpg.*a.xml says it is 50x30.*40x30"):
        PascalVOCDataset(str(tmp_path), "split")[0]


# ---------------------------------------------------------------- catalog and registration

def test_missing_catalog_files_name_the_data_root_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("MASKRCNN_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"instances_val2017.json.*MASKRCNN_DATA_DIR.*DATASETS.REGISTER"):
        build_dataset(["coco_2017_val"], None, DatasetCatalog, is_train=False)


def test_unknown_dataset_name_points_to_registration():
    with pytest.raises(KeyError, match=r"'my_data'.*DATASETS.REGISTER"):
        DatasetCatalog.get("my_data")


def test_registering_a_name_twice_differently_or_a_builtin_name_is_refused(tmp_path):
    register_coco_instances("bad_inputs_twice", {}, tmp_path / "a.json", tmp_path)
    register_coco_instances("bad_inputs_twice", {}, tmp_path / "a.json", tmp_path)  # the same: fine
    with pytest.raises(ValueError, match=r"'bad_inputs_twice' is already registered"):
        register_coco_instances("bad_inputs_twice", {}, tmp_path / "b.json", tmp_path)
    with pytest.raises(ValueError, match=r"'coco_2017_val'.*built into the DatasetCatalog"):
        register_coco_instances("coco_2017_val", {}, tmp_path / "a.json", tmp_path)


@pytest.mark.parametrize("entry", ["mine", "mine=yolo:a:b", "mine=coco:only_one", "=coco:a.json:images",
                                   "mine=voc:a:b:c:d"])
def test_malformed_register_entry_is_named(entry):
    with pytest.raises(ValueError, match="DATASETS.REGISTER entry"):
        parse_registration(entry)
