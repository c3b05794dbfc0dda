"""Every detector family, baseline and Sampling-Free, through the command-line tools: a few
iterations of tools/train_net.py, then tools/test_net.py on the final checkpoint, each as a
subprocess. The metrics file under OUTPUT_DIR/inference/<dataset>/ must hold the AP of the
family (bbox, and segm for Mask R-CNN) as a number in [0, 1], and test_net must reproduce the
final evaluation of train_net: the same metrics and the same detections.

Small on purpose (8 generated 128 x 128 images per split, registered through DATASETS.REGISTER,
3 iterations of 2 images): about 20 s per config on one core."""
import json
import math
import os
import subprocess
import sys

import pytest

from maskrcnn_benchmark.data.datasets.shapes import generate_shapes

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = [
    "retinanet_R-18-FPN_shapes", "retinanet_R-18-FPN_shapes_sampling_free",
    "fcos_R-18-FPN_shapes", "fcos_R-18-FPN_shapes_sampling_free",
    "atss_R-18-FPN_shapes", "atss_R-18-FPN_shapes_sampling_free",
    "paa_R-18-FPN_shapes", "paa_R-18-FPN_shapes_sampling_free",
    "faster_rcnn_R_18_FPN_shapes", "faster_rcnn_R_18_FPN_shapes_sampling_free",
    "mask_rcnn_R_18_FPN_shapes", "mask_rcnn_R_18_FPN_shapes_sampling_free",
]
DATASET = "e2e_val"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Two small shapes splits registered by name, and the subprocess environment."""
    root = tmp_path_factory.mktemp("e2e_data")
    registrations = []
    for name, seed in (("e2e_train", 1), ("e2e_val", 2)):
        generate_shapes(root / name, num_images=8, seed=seed)
        registrations.append("{}=coco:{}:{}".format(name, root / name / "annotations.json", root / name / "images"))
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=ROOT,
               MASKRCNN_DATA_DIR=str(root / "catalog"))  # nothing may come from the default catalog
    overrides = ["DATASETS.REGISTER", repr(tuple(registrations)), "DATASETS.TRAIN", "('e2e_train',)",
                 "DATASETS.TEST", "('{}',)".format(DATASET), "TEST.IMS_PER_BATCH", "4"]
    # after 3 iterations few scores pass the usual 0.05: keep low ones, so that there are detections to compare
    for key in ("ROI_HEADS.SCORE_THRESH", "RETINANET.INFERENCE_TH", "FCOS.INFERENCE_TH", "ATSS.INFERENCE_TH",
                "PAA.INFERENCE_TH"):
        overrides += ["MODEL." + key, "0.001"]
    return env, overrides


def _run(args, env):
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, "{} failed:\n{}\n{}".format(args, done.stdout[-3000:], done.stderr[-3000:])


def _read(folder, name):
    with open(os.path.join(folder, "inference", DATASET, name)) as f:
        return json.load(f)


@pytest.mark.slow
@pytest.mark.parametrize("config", CONFIGS)
def test_train_net_then_test_net(config, data, tmp_path):
    env, overrides = data
    config_file = os.path.join("configs", "shapes", config + ".yaml")
    train_dir, test_dir = tmp_path / "train", tmp_path / "test"
    _run(["tools/train_net.py", "--config-file", config_file, "OUTPUT_DIR", str(train_dir), *overrides,
          "SOLVER.MAX_ITER", "3", "SOLVER.IMS_PER_BATCH", "2", "SOLVER.WARMUP_ITERS", "1", "SOLVER.STEPS", "(100,)",
          "SOLVER.CHECKPOINT_PERIOD", "100", "MODEL.SAMPLING_FREE.SAMPLE_IMAGES", "8"], env)
    checkpoint = train_dir / "model_final.pth"
    assert checkpoint.is_file()
    _run(["tools/test_net.py", "--config-file", config_file, "--ckpt", str(checkpoint), "OUTPUT_DIR", str(test_dir),
          *overrides], env)

    iou_types = ["bbox", "segm"] if config.startswith("mask_rcnn") else ["bbox"]
    trained, tested = _read(train_dir, "metrics.json"), _read(test_dir, "metrics.json")
    assert sorted(tested["results"]) == sorted(iou_types)
    for iou_type in iou_types:
        ap = tested["results"][iou_type]["AP"]
        assert isinstance(ap, float) and math.isfinite(ap) and 0.0 <= ap <= 1.0, (iou_type, ap)
    assert tested == trained
    # the same checkpoint gives the same detections, not only the same (possibly zero) AP
    for iou_type in iou_types:
        from_train, from_test = _read(train_dir, iou_type + ".json"), _read(test_dir, iou_type + ".json")
        assert len(from_test) > 0 and len(from_test) == len(from_train)
        for a, b in zip(from_train, from_test):
            assert (a["image_id"], a["category_id"]) == (b["image_id"], b["category_id"])
            assert a["score"] == pytest.approx(b["score"], abs=1e-5)
            if iou_type == "bbox":
                assert a["bbox"] == pytest.approx(b["bbox"], abs=1e-3)
            else:
                assert a["segmentation"] == b["segmentation"]
