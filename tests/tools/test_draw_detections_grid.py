"""demo/draw_detections.py's grid: several images upscaled, ground truth beside detections, and a
loud failure when an image has no detection."""
import json
import os

import cv2
import numpy as np
import pytest
import torch

from demo.draw_detections import _color, compose_grid, load_ground_truth, main as draw_main
from maskrcnn_benchmark.engine.launch import load_config
from maskrcnn_benchmark.modeling.detector import build_detection_model
from maskrcnn_benchmark.utils.checkpoint import Checkpointer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "configs", "shapes", "retinanet_R-18-FPN_shapes.yaml")
# an untrained head scores about its prior (0.01): a low inference threshold makes it report boxes
OPTS = ["MODEL.RETINANET.INFERENCE_TH", "0.001", "MODEL.DEVICE", "cpu"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    model = build_detection_model(load_config(CONFIG, OPTS))
    folder = tmp_path_factory.mktemp("weights")
    Checkpointer(model, save_dir=str(folder), save_to_disk=True).save("model_final")
    return str(folder / "model_final.pth")


@pytest.fixture
def annotated_images(tmp_path):
    """Two 64 x 48 grey images and a COCO json with a circle (category id 7) and a square (3)."""
    paths = []
    for name in ("a.png", "b.png"):
        image = np.full((48, 64, 3), 100, dtype=np.uint8)
        cv2.circle(image, (20, 20), 10, (0, 255, 0), -1)
        cv2.imwrite(str(tmp_path / name), image)
        paths.append(str(tmp_path / name))
    coco = {
        "images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 48},
                   {"id": 2, "file_name": "b.png", "width": 64, "height": 48}],
        "categories": [{"id": 7, "name": "circle"}, {"id": 3, "name": "square"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 7, "bbox": [10, 10, 20, 20], "iscrowd": 0, "area": 400},
            {"id": 2, "image_id": 2, "category_id": 3, "bbox": [30, 5, 10, 30], "iscrowd": 0, "area": 300},
            {"id": 3, "image_id": 2, "category_id": 7, "bbox": [0, 0, 64, 48], "iscrowd": 1, "area": 3072},
        ],
    }
    ann = tmp_path / "annotations.json"
    ann.write_text(json.dumps(coco))
    return paths, str(ann)


def test_ground_truth_boxes_and_contiguous_labels(annotated_images):
    _, ann = annotated_images
    truth = load_ground_truth(ann)
    # ids 3 and 7 become labels 1 and 2 (sorted id order, as the COCO dataset numbers them)
    assert truth["a.png"] == ([[10, 10, 30, 30]], [2], ["circle"])
    assert truth["b.png"] == ([[30, 5, 40, 35]], [1], ["square"])  # the crowd box is left out


def test_grid_of_ground_truth_beside_detections(weights, annotated_images, tmp_path, one_thread):
    paths, ann = annotated_images
    out = str(tmp_path / "grid.png")
    assert draw_main(["--config-file", CONFIG, "--weights", weights, "--input", *paths, "--grid",
                      "--ground-truth", ann, "--scale", "4", "--columns", "2", "--confidence", "0.0",
                      "--output", out, *OPTS]) == [out]
    grid = cv2.imread(out)
    # one row of two cells, each: ground truth and detections, 4x upscaled (256 x 192), side by side
    assert grid.shape[1] > 4 * 256 and grid.shape[0] > 192
    assert grid.shape[1] < 4 * 256 + 60 and grid.shape[0] < 192 + 120  # gaps and title bars only
    # the circle's ground-truth box (10..30 at 4x = 40..120) is drawn in class 2's colour in the
    # first tile: find its left edge in the column of that colour
    colour = np.array(_color(2))
    matches = np.argwhere(np.all(np.abs(grid.astype(int) - colour) <= 2, axis=2))
    assert len(matches) > 100
    assert matches[:, 1].min() < 256  # within the first (ground-truth) tile of the first cell


def test_a_picture_without_detections_fails_loudly_after_writing(weights, annotated_images, tmp_path, capsys):
    paths, ann = annotated_images
    out = str(tmp_path / "empty.png")
    args = ["--config-file", CONFIG, "--weights", weights, "--input", *paths, "--grid", "--confidence", "1.01",
            "--output", out, *OPTS]
    with pytest.raises(SystemExit, match=r"no detection with score >= 1.01 in .*a\.png, .*b\.png"):
        draw_main(args)
    assert os.path.exists(out)  # still there to look at
    assert draw_main(args[:-len(OPTS)] + ["--allow-empty", *OPTS]) == [out]


def test_bad_grid_arguments_are_named(weights, annotated_images, tmp_path):
    paths, ann = annotated_images
    with pytest.raises(SystemExit):  # ground truth is only drawn in a grid
        draw_main(["--config-file", CONFIG, "--input", *paths, "--ground-truth", ann, "--output", "x.png"])
    other = tmp_path / "c.png"
    cv2.imwrite(str(other), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(SystemExit):
        draw_main(["--config-file", CONFIG, "--input", str(other), "--grid", "--ground-truth", ann,
                   "--output", "x.png"])


def test_compose_grid_places_cells_in_rows():
    cells = [np.full((10, 20, 3), value, dtype=np.uint8) for value in (0, 50, 100)]
    grid = compose_grid(cells, columns=2)
    gap = 8
    assert grid.shape == (2 * (10 + gap) + gap, 2 * (20 + gap) + gap, 3)
    assert grid[gap, gap].tolist() == [0, 0, 0] and grid[gap, 2 * gap + 20].tolist() == [50, 50, 50]
    assert grid[2 * gap + 10, gap].tolist() == [100, 100, 100]
    assert grid[0, 0].tolist() == [255, 255, 255]
