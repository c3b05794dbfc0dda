"""VOC mAP against hand-computed values; PascalVOCDataset on a hand-built VOC folder."""
import numpy as np
import pytest
import torch
from PIL import Image

from maskrcnn_benchmark.data.datasets import PascalVOCDataset
from maskrcnn_benchmark.data.datasets.evaluation import evaluate
from maskrcnn_benchmark.data.datasets.evaluation.voc.voc_eval import eval_detection_voc
from maskrcnn_benchmark.structures.bounding_box import BoxList


def _boxlist(boxes, labels, scores=None, difficult=None, size=(100, 100)):
    boxlist = BoxList(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), size)
    boxlist.add_field("labels", torch.tensor(labels, dtype=torch.int64))
    if scores is not None:
        boxlist.add_field("scores", torch.tensor(scores))
    if difficult is not None:
        boxlist.add_field("difficult", torch.tensor(difficult))
    return boxlist


def test_hand_computed_ap():
    # class 1: 3 gt boxes (one difficult) over two images; class 2: one gt, missed
    gts = [_boxlist([[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]], [1, 1, 1],
                    difficult=[False, False, True]),
           _boxlist([[0, 0, 20, 20]], [2], difficult=[False])]
    preds = [_boxlist([[0, 0, 10, 10],    # 0.9 TP
                       [0, 0, 10, 9],     # 0.8 duplicate of a matched gt: FP
                       [50, 50, 60, 60],  # 0.7 difficult: ignored
                       [70, 70, 80, 80],  # 0.6 FP
                       [20, 20, 30, 31]],  # 0.5 TP (IoU 10/11)
                      [1, 1, 1, 1, 1], scores=[0.9, 0.8, 0.7, 0.6, 0.5]),
             _boxlist([[60, 60, 80, 80]], [2], scores=[0.4])]
    # class 1, ranked without the ignored one: TP, FP, FP, TP over 2 positives
    # cumulated: tp 1,1,1,2 fp 0,1,2,2 -> prec 1, .5, 1/3, .5 ; rec .5, .5, .5, 1
    area = eval_detection_voc(preds, gts, 0.5, use_07_metric=False)
    # area: envelope 1 up to recall .5, then .5 up to 1 -> .5 * 1 + .5 * .5
    assert area["ap"][1] == pytest.approx(0.75)
    assert area["ap"][2] == pytest.approx(0.0)
    assert area["map"] == pytest.approx(0.375)
    voc07 = eval_detection_voc(preds, gts, 0.5, use_07_metric=True)
    # 11 points: recall 0 .. 0.5 (6 points) precision 1, 0.6 .. 1.0 (5 points) precision 0.5
    assert voc07["ap"][1] == pytest.approx((6 * 1.0 + 5 * 0.5) / 11)
    assert np.isnan(voc07["ap"][0])


def _write_voc(root, objects_per_image):
    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    (root / "ImageSets" / "Main").mkdir(parents=True)
    names = []
    for i, objects in enumerate(objects_per_image):
        name = "img{}".format(i)
        names.append(name)
        Image.new("RGB", (80, 60), (i * 40, 10, 10)).save(root / "JPEGImages" / (name + ".jpg"))
        xml = ["<annotation><size><width>80</width><height>60</height><depth>3</depth></size>"]
        for cls, (x1, y1, x2, y2), difficult in objects:
            xml.append("<object><name>{}</name><difficult>{}</difficult><bndbox><xmin>{}</xmin>"
                       "<ymin>{}</ymin><xmax>{}</xmax><ymax>{}</ymax></bndbox></object>".format(
                           cls, int(difficult), x1, y1, x2, y2))
        xml.append("</annotation>")
        (root / "Annotations" / (name + ".xml")).write_text("".join(xml))
    (root / "ImageSets" / "Main" / "test.txt").write_text("\n".join(names) + "\n")


def test_voc_dataset_and_evaluation(tmp_path):
    _write_voc(tmp_path, [[("dog", (11, 21, 40, 50), False), ("cat", (1, 1, 10, 10), True)],
                          [("person", (5, 5, 70, 55), False)]])
    train = PascalVOCDataset(str(tmp_path), "test", use_difficult=False)
    image, target, index = train[0]
    assert image.size == (80, 60) and index == 0
    # 1-based inclusive pixels -> continuous coordinates
    assert target.bbox.tolist() == [[10.0, 20.0, 40.0, 50.0]]
    assert [train.map_class_id_to_class_name(int(l)) for l in target.get_field("labels")] == ["dog"]
    test = PascalVOCDataset(str(tmp_path), "test", use_difficult=True)
    assert len(test.get_groundtruth(0)) == 2 and test.get_img_info(1)["width"] == 80

    predictions = []
    for i in range(len(test)):
        gt = test.get_groundtruth(i)
        gt = gt[~gt.get_field("difficult")]
        prediction = _boxlist(gt.bbox.tolist(), gt.get_field("labels").tolist(),
                              scores=[0.9] * len(gt), size=(80, 60)).resize((40, 30))
        predictions.append(prediction)
    result = evaluate(test, predictions, str(tmp_path / "out"))
    assert result["map"] == pytest.approx(1.0) and result["map_area"] == pytest.approx(1.0)
    assert (tmp_path / "out" / "metrics.json").is_file()
    assert (tmp_path / "out" / "predictions.pth").is_file()


def test_voc_bad_inputs_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="trainval.txt"):
        PascalVOCDataset(str(tmp_path), "trainval")
    _write_voc(tmp_path, [[("dragon", (1, 1, 5, 5), False)]])
    with pytest.raises(ValueError, match="img0.xml.*dragon"):
        PascalVOCDataset(str(tmp_path), "test")
