"""Demo predictor and drawing: predictions in original-image coordinates, thresholding, input
forms, drawing of boxes / captions / masks, the draw_detections command."""
import os

import cv2
import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image

from demo.draw_detections import draw_predictions, main as draw_main
from demo.predictor import COCODemo, category_names_for, read_image
from maskrcnn_benchmark.engine.launch import load_config
from maskrcnn_benchmark.modeling.detector import build_detection_model
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.image_list import to_image_list
from maskrcnn_benchmark.utils.checkpoint import Checkpointer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "configs", "shapes", "retinanet_R-18-FPN_shapes.yaml")
# an untrained head scores about its prior (0.01): lower the inference threshold so it reports boxes
OPTS = ["MODEL.RETINANET.INFERENCE_TH", "0.001", "MODEL.DEVICE", "cpu"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    cfg = load_config(CONFIG, OPTS)
    torch.manual_seed(0)
    model = build_detection_model(cfg)
    folder = tmp_path_factory.mktemp("weights")
    Checkpointer(model, save_dir=str(folder), save_to_disk=True).save("model_final")
    return str(folder / "model_final.pth")


def _image(width=192, height=160):
    image = np.full((height, width, 3), 90, dtype=np.uint8)
    cv2.rectangle(image, (20, 30), (90, 100), (0, 0, 255), -1)
    cv2.circle(image, (140, 110), 30, (0, 255, 0), -1)
    return image


def test_prediction_in_original_coordinates_matches_manual_pipeline(weights):
    torch.set_num_threads(1)
    cfg = load_config(CONFIG, OPTS)
    demo = COCODemo(cfg, weights=weights, confidence_threshold=0.0)
    image = _image()
    prediction = demo.compute_prediction(image)
    assert prediction.size == (192, 160) and len(prediction) > 0

    # independent pipeline: shorter side to MIN_SIZE_TEST unless the longer one would pass
    # MAX_SIZE_TEST, BGR in [0, 255], normalise, forward
    scale = min(cfg.INPUT.MIN_SIZE_TEST / 160, cfg.INPUT.MAX_SIZE_TEST / 192)
    resized = TF.resize(Image.fromarray(image[:, :, ::-1].copy()), [round(160 * scale), round(192 * scale)])
    tensor = TF.to_tensor(resized)[[2, 1, 0]] * 255
    tensor = TF.normalize(tensor, cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD)
    with torch.no_grad():
        reference = demo.model(to_image_list([tensor], cfg.DATALOADER.SIZE_DIVISIBILITY))[0]
    order = prediction.get_field("scores").argsort(descending=True)
    reference_order = reference.get_field("scores").argsort(descending=True)
    ratios = torch.tensor([192 / resized.width, 160 / resized.height] * 2)
    assert torch.allclose(prediction.bbox[order], reference.bbox[reference_order] * ratios, atol=1e-3)
    assert torch.equal(prediction.get_field("labels")[order], reference.get_field("labels")[reference_order])


def test_threshold_order_and_input_forms(weights, tmp_path):
    cfg = load_config(CONFIG, OPTS)
    demo = COCODemo(cfg, weights=weights, confidence_threshold=0.0)
    image = _image()
    path = tmp_path / "in.png"
    cv2.imwrite(str(path), image)
    from_array, from_path = demo.predict(image), demo.predict(str(path))
    assert torch.equal(from_array.bbox, from_path.bbox)
    scores = from_array.get_field("scores")
    assert torch.all(scores[:-1] >= scores[1:])
    middle = float(scores.median())
    demo.confidence_threshold = middle
    kept = demo.predict(image)
    assert 0 < len(kept) < len(from_array) + 1 and torch.all(kept.get_field("scores") >= middle)
    demo.confidence_threshold = 1.01
    assert len(demo.predict(image)) == 0
    assert all(name in ("square", "circle", "triangle", "star") for name in demo.label_names(from_array))
    with pytest.raises(FileNotFoundError, match="missing.png"):
        demo.predict(str(tmp_path / "missing.png"))


def test_category_names_follow_the_datasets():
    cfg = load_config(CONFIG, [])
    assert category_names_for(cfg) == ("__background", "square", "circle", "triangle", "star")
    coco = load_config(CONFIG, ["DATASETS.TRAIN", "('coco_2017_train',)", "DATASETS.TEST", "('coco_2017_val',)"])
    names = category_names_for(coco)
    assert len(names) == 81 and names[1] == "person" and names[-1] == "toothbrush"


def test_draw_predictions_boxes_captions_and_masks():
    image = np.zeros((100, 120, 3), dtype=np.uint8)
    boxes = BoxList(torch.tensor([[10.0, 40.0, 60.0, 90.0]]), (120, 100))
    boxes.add_field("labels", torch.tensor([2]))
    boxes.add_field("scores", torch.tensor([0.9]))
    mask = torch.zeros(1, 1, 100, 120)
    mask[0, 0, 60:80, 20:40] = 1.0
    boxes.add_field("mask", mask)
    drawn = draw_predictions(image, boxes, ["circle"])
    assert drawn.shape == image.shape and not drawn[0:25, 70:].any()  # far from the box: untouched
    assert drawn[90, 30].any() and drawn[65, 10].any()  # bottom and left edges of the box
    assert drawn[70, 30].any() and not drawn[70, 50].any()  # inside the mask vs inside the box only
    assert drawn[30:40, 10:50].any()  # the caption above the box
    assert not image.any()  # the input is not modified


def test_draw_detections_command_writes_pngs(weights, tmp_path):
    inputs = []
    for i in range(2):
        path = tmp_path / f"img{i}.png"
        cv2.imwrite(str(path), _image())
        inputs.append(str(path))
    written = draw_main(["--config-file", CONFIG, "--weights", weights, "--input", *inputs,
                         "--output", str(tmp_path / "out" / "det.png"), "--confidence", "0.0", *OPTS])
    assert written == [str(tmp_path / "out" / "det_0.png"), str(tmp_path / "out" / "det_1.png")]
    for path in written:
        drawn = read_image(path)
        assert drawn.shape == (160, 192, 3) and not np.array_equal(drawn, _image())


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint16, np.int32])
def test_an_array_of_another_dtype_is_refused_naming_the_dtype(dtype):
    image = np.zeros((8, 8, 3), dtype=dtype)
    with pytest.raises(ValueError, match=f"uint8 BGR array.*{np.dtype(dtype).name}"):
        read_image(image)
    same = np.full((8, 8, 3), 7, dtype=np.uint8)
    assert read_image(same) is same
