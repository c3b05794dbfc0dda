"""End to end on CPU: ATSS and PAA (GeneralizedRCNN, narrow R-18 GN backbone, shapes configs) overfit
8 generated shapes images; COCO box AP (pycocotools) on those same images must reach a floor.

Measured on 2 shared CPU cores with OMP_NUM_THREADS=1, 150 iterations each (80-100 s per case):
ATSS focal AP 1.000, ATSS Sampling-Free 0.712, PAA focal 0.938, PAA Sampling-Free 0.768. The floor
(0.5) leaves a margin for other machines; a detector that does not learn stays near 0.
"""
import contextlib
import io
import os

import pytest
import torch
from pycocotools.cocoeval import COCOeval

from maskrcnn_benchmark.config import cfg as default_cfg
from maskrcnn_benchmark.data.datasets.coco import COCODataset
from maskrcnn_benchmark.data.datasets.shapes import ensure_shapes_dataset
from maskrcnn_benchmark.data.transforms import build_transforms
from maskrcnn_benchmark.modeling.detector import build_detection_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_IMAGES = 8
SHAPES_TRAIN_SEED = 2024
WARMUP_ITERS = 30

# (config under configs/shapes, iterations, AP floor)
CASES = [
    ("atss_R-18-FPN_shapes.yaml", 150, 0.5),
    ("atss_R-18-FPN_shapes_sampling_free.yaml", 150, 0.5),
    ("paa_R-18-FPN_shapes.yaml", 150, 0.5),
    ("paa_R-18-FPN_shapes_sampling_free.yaml", 150, 0.5),
]


def load_shapes_cfg(name):
    cfg = default_cfg.clone()
    cfg.merge_from_file(os.path.join(ROOT, "configs", "shapes", name))
    return cfg


def box_ap(model, dataset):
    model.eval()
    detections = []
    with torch.no_grad():
        for index in range(len(dataset)):
            image, _, _ = dataset[index]
            result = model([image])[0].convert("xywh")
            for box, score, label in zip(result.bbox.tolist(), result.get_field("scores").tolist(),
                                         result.get_field("labels").tolist()):
                detections.append({
                    "image_id": dataset.id_to_img_map[index],
                    "category_id": dataset.contiguous_category_id_to_json_id[label],
                    "bbox": box,
                    "score": score,
                })
    if not detections:
        return 0.0
    with contextlib.redirect_stdout(io.StringIO()):
        evaluation = COCOeval(dataset.coco, dataset.coco.loadRes(detections), "bbox")
        evaluation.params.imgIds = [dataset.id_to_img_map[i] for i in range(len(dataset))]
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return float(evaluation.stats[0])


def one_stage_module(model):
    return model.rpn


def overfit(cfg, iterations, data_dir):
    torch.manual_seed(0)
    image_dir, ann_file = ensure_shapes_dataset(str(data_dir), NUM_IMAGES, SHAPES_TRAIN_SEED)
    dataset = COCODataset(ann_file, image_dir, True, transforms=build_transforms(cfg, is_train=False))
    model = build_detection_model(cfg)
    samples = [dataset[i] for i in range(len(dataset))]
    images, targets = [s[0] for s in samples], [s[1] for s in samples]

    if cfg.MODEL.SAMPLING_FREE.ONE_STAGE.BIAS_INIT == "optimal":
        head = one_stage_module(model)
        sizes = [(t.size[1], t.size[0]) for t in targets]
        info = head.set_bias_from_counts(head.count_samples(targets, sizes))
        assert 0 < info["pi"] < 0.05

    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.SOLVER.BASE_LR, momentum=0.9,
                                weight_decay=cfg.SOLVER.WEIGHT_DECAY)
    model.train()
    for iteration in range(iterations):
        for group in optimizer.param_groups:
            group["lr"] = cfg.SOLVER.BASE_LR * min(1.0, (iteration + 1) / WARMUP_ITERS)
        losses = model(images, targets)
        total = sum(value for key, value in losses.items() if key.startswith("loss"))
        assert torch.isfinite(total), f"loss diverged at iteration {iteration}: {losses}"
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    return box_ap(model, dataset), losses


@pytest.mark.slow
@pytest.mark.parametrize("name,iterations,ap_floor", CASES)
def test_overfit_shapes(name, iterations, ap_floor, tmp_path):
    torch.set_num_threads(1)
    ap, losses = overfit(load_shapes_cfg(name), iterations, tmp_path / "shapes")
    print(f"{name}: AP {ap:.3f} after {iterations} iterations; last losses "
          f"{ {k: round(float(v), 4) for k, v in losses.items()} }")
    assert ap >= ap_floor
