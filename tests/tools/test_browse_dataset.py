"""tools/browse_dataset.py draws the ground truth after the training transforms: the picture has
the resized size, boxes sit where the flip and the resize put them, masks are blended in."""
import json
import os
import sys

import cv2
import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, ROOT)
import browse_dataset  # noqa: E402
from demo.draw_detections import _color  # noqa: E402

CONFIG = os.path.join(ROOT, "configs", "shapes", "faster_rcnn_R_18_FPN_shapes.yaml")


def test_boxes_and_masks_follow_the_training_transforms(tmp_path):
    # one 40 x 30 grey image with a 10 x 10 square object at x 4..14, y 6..16
    (tmp_path / "images").mkdir()
    Image.fromarray(np.full((30, 40, 3), 128, np.uint8)).save(tmp_path / "images" / "only.png")
    coco = {"images": [{"id": 1, "file_name": "only.png", "width": 40, "height": 30}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 2, "bbox": [4, 6, 10, 10], "area": 100,
                             "iscrowd": 0, "segmentation": [[4, 6, 14, 6, 14, 16, 4, 16]]}],
            "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}
    (tmp_path / "ann.json").write_text(json.dumps(coco))
    register = "browse_test=coco:{}:{}".format(tmp_path / "ann.json", tmp_path / "images")
    written = browse_dataset.main([
        "--config-file", CONFIG, "--output-dir", str(tmp_path / "out"), "DATASETS.REGISTER", repr((register,)),
        "DATASETS.TRAIN", "('browse_test',)", "INPUT.MIN_SIZE_TRAIN", "(60,)", "INPUT.MAX_SIZE_TRAIN", "200",
        "INPUT.HORIZONTAL_FLIP_PROB_TRAIN", "1.0", "MODEL.ROI_BOX_HEAD.NUM_CLASSES", "3"])
    assert [os.path.basename(p) for p in written] == ["000000_only.png"]
    canvas = cv2.imread(written[0])
    assert canvas.shape == (60, 80, 3)  # resized x 2
    # flipped then doubled: the square covers x 52..72, y 12..32; label 2 has its class colour. The box
    # is in maskrcnn-benchmark's inclusive corners (the default MODEL.BOX_CONVENTION): x 4..13 doubled
    # is 8..26, mirrored in 80 pixels 53..71
    colour = np.array(_color(2))
    assert np.abs(canvas[28, 53].astype(int) - colour).max() <= 1  # left edge of the box, below the caption
    blended = canvas[22, 62].astype(int)  # inside: the mask blends the grey with the colour
    assert np.abs(blended - (0.55 * 128 + 0.45 * colour)).max() <= 2
    assert np.abs(canvas[22, 18].astype(int) - 128).max() <= 1  # the unflipped place holds nothing
