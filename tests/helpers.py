"""Helpers shared by several test modules: hand-built inputs for the one-stage heads, and the short
"overfit a few shapes images, then measure COCO AP with pycocotools" runs."""
import contextlib
import io
import itertools
import json
import math
import os
import subprocess
import sys

import torch
from pycocotools.cocoeval import COCOeval

from maskrcnn_benchmark.config import cfg as default_cfg
from maskrcnn_benchmark.data.datasets.coco import COCODataset
from maskrcnn_benchmark.data.datasets.evaluation.coco.coco_eval import prepare_for_coco_segmentation
from maskrcnn_benchmark.data.datasets.shapes import SHAPES_SPLITS, ensure_shapes_dataset
from maskrcnn_benchmark.data.transforms import build_transforms
from maskrcnn_benchmark.engine.hooks import LRScheduler, OptimalBiasInit
from maskrcnn_benchmark.engine.trainer import SimpleTrainer
from maskrcnn_benchmark.modeling.roi_heads.mask_head.inference import Masker
from maskrcnn_benchmark.solver import make_lr_scheduler, make_optimizer
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.utils.device import resolve_device

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPES_CONFIGS = os.path.join(ROOT, "configs", "shapes")
FPN_STRIDES = (8, 16, 32, 64, 128)  # P3-P7


# ---------------------------------------------------------------- hand-built inputs

def target_boxlist(boxes, labels, size):
    """A ground-truth BoxList: ``boxes`` in xyxy (possibly empty), 1-based ``labels``, ``size``
    (width, height)."""
    boxlist = BoxList(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), size, mode="xyxy")
    boxlist.add_field("labels", torch.tensor(labels, dtype=torch.int64))
    return boxlist


def random_rois(generator, count, batch_size, extent, dtype):
    """RoIs (batch index, x1, y1, x2, y2) with corners spread beyond an ``extent``-pixel image
    (off-image and partly-outside boxes), for the pooling ops' tests."""
    corners = torch.rand(count, 4, generator=generator, dtype=dtype) * (extent * 1.4) - extent * 0.2
    x1, x2 = torch.minimum(corners[:, 0], corners[:, 2]), torch.maximum(corners[:, 0], corners[:, 2])
    y1, y2 = torch.minimum(corners[:, 1], corners[:, 3]), torch.maximum(corners[:, 1], corners[:, 3])
    batch = torch.randint(0, batch_size, (count,), generator=generator).to(dtype)
    return torch.stack([batch, x1, y1, x2, y2], dim=1)


def assert_pooling_backward_matches(ours, reference, edge_rois, output_size, seed):
    """The input gradient of a pooling op, ``ours(features, rois)``, equals ``reference``'s on
    float64 features (2 x 4 x 20 x 20) for random RoIs plus ``edge_rois``, under the same random
    output gradient."""
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(2, 4, 20, 20, generator=g, dtype=torch.float64)
    rois = torch.cat([random_rois(g, 25, 2, 40.0, torch.float64), torch.tensor(edge_rois, dtype=torch.float64)])
    grad = torch.randn(rois.shape[0], 4, output_size, output_size, generator=g, dtype=torch.float64)
    ours_in = features.clone().requires_grad_()
    ours(ours_in, rois).backward(grad)
    reference_in = features.clone().requires_grad_()
    reference(reference_in, rois).backward(grad)
    torch.testing.assert_close(ours_in.grad, reference_in.grad, atol=1e-10, rtol=0)


def fpn_features(height, width, channels, batch=1):
    """Random P3-P7 maps with the sizes a backbone gives for a padded (height, width) image."""
    return [torch.randn(batch, channels, math.ceil(height / s), math.ceil(width / s)) for s in FPN_STRIDES]


def square_grid(num_cells, stride, size):
    """Square anchors of ``size`` centred at stride/2 + stride*i, row-major (y then x)."""
    anchors = []
    for row, col in itertools.product(range(num_cells), range(num_cells)):
        cx, cy = stride / 2 + stride * col, stride / 2 + stride * row
        anchors.append([cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2])
    return torch.tensor(anchors)


# ---------------------------------------------------------------- shapes trainings

def run_train_net(config_file, output_dir, module_dirs=(), timeout=600):
    """``tools/train_net.py --config-file config_file --skip-test`` in a subprocess on one thread,
    writing to ``output_dir`` (the shapes data generated under it); ``module_dirs`` go on
    PYTHONPATH (for CUSTOM_IMPORTS). Fails the test with the run's output when it fails; returns
    ``output_dir``."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               MASKRCNN_DATA_DIR=os.path.join(str(output_dir), "data"),
               PYTHONPATH=os.pathsep.join([ROOT, *module_dirs]))
    done = subprocess.run(
        [sys.executable, "tools/train_net.py", "--config-file", config_file, "--skip-test",
         "OUTPUT_DIR", str(output_dir)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return output_dir


def read_metrics(output_dir):
    """The records of ``output_dir/metrics.json`` (one per log period)."""
    with open(os.path.join(str(output_dir), "metrics.json")) as handle:
        return [json.loads(line) for line in handle.read().splitlines()]



def shapes_cfg(*config_names, options=()):
    """The default config with the given files of ``configs/shapes`` merged in order, then
    ``options`` (``KEY value`` pairs)."""
    cfg = default_cfg.clone()
    for name in config_names:
        cfg.merge_from_file(os.path.join(SHAPES_CONFIGS, name))
    cfg.merge_from_list(list(options))
    return cfg


def shapes_dataset(cfg, data_dir, num_images):
    """``num_images`` shapes images generated under ``data_dir`` with the "shapes_train" seed, as
    a COCODataset with test-time transforms (no random flip)."""
    image_dir, ann_file = ensure_shapes_dataset(str(data_dir), num_images, SHAPES_SPLITS["shapes_train"]["seed"])
    return COCODataset(ann_file, image_dir, True, transforms=build_transforms(cfg, is_train=False))


def images_and_targets(dataset, indices):
    """The images and targets of ``dataset`` at ``indices``, as two lists (one batch)."""
    samples = [dataset[i] for i in indices]
    return [s[0] for s in samples], [s[1] for s in samples]


def overfit_shapes(cfg, model, dataset, iterations, warmup_iters):
    """Train ``model`` on all of ``dataset`` as one fixed batch with the project's trainer: the
    Sampling-Free optimal bias (heads whose config asks for it, counted over ``dataset``), then
    ``make_optimizer``'s SGD (``cfg.SOLVER`` lr, momentum, weight decay; no decay on delta) with a
    linear warm-up over ``warmup_iters`` and lr x 0.1 for the last quarter; a non-finite loss stops
    it. Returns the last (detached) loss dict and what each optimal-bias head reported it set.

    The drop lets the last iterate settle: at a constant lr the AP of the last iterate swung
    between 0.04 and 0.65 (FCOS, 150 iterations) with nothing but float rounding changed."""
    images, targets = images_and_targets(dataset, range(len(dataset)))
    cfg = cfg.clone()
    cfg.defrost()
    cfg.merge_from_list([
        "SOLVER.MAX_ITER", iterations, "SOLVER.STEPS", (int(0.75 * iterations),), "SOLVER.GAMMA", 0.1,
        "SOLVER.WARMUP_ITERS", warmup_iters, "SOLVER.WARMUP_FACTOR", 1.0 / warmup_iters,
        "SOLVER.WARMUP_METHOD", "linear", "MODEL.SAMPLING_FREE.SAMPLE_IMAGES", len(dataset),
        "OUTPUT_DIR", "",  # no count cache written anywhere
    ])
    optimizer = make_optimizer(cfg, model)
    bias_init = OptimalBiasInit(cfg, dataset)
    trainer = SimpleTrainer(model, itertools.repeat((images, targets, None)), optimizer,
                            resolve_device(cfg.MODEL.DEVICE), cfg.DTYPE)
    trainer.register_hooks([bias_init, LRScheduler(optimizer, make_lr_scheduler(cfg, optimizer))])
    trainer.train(0, iterations)
    return trainer.last_loss_dict, list(bias_init.applied.values())


def short_train_net_argv(config_file, output_dir, *overrides, flags=()):
    """tools/train_net.py arguments for a few-iteration CPU run (batch 2, a log line and a
    checkpoint every 2 iterations, 2 warm-up iterations, no final evaluation) into ``output_dir``."""
    return ["--config-file", config_file, "--skip-test", *flags, "OUTPUT_DIR", str(output_dir), "MODEL.DEVICE", "cpu",
            "SOLVER.IMS_PER_BATCH", "2", "SOLVER.LOG_PERIOD", "2", "SOLVER.CHECKPOINT_PERIOD", "2",
            "SOLVER.WARMUP_ITERS", "2", *[str(o) for o in overrides]]


def overfit_and_measure_ap(cfg, build_model, data_dir, num_images, iterations, warmup_iters, max_prior):
    """``build_model(cfg)`` (seed 0) overfits ``num_images`` shapes images (``overfit_shapes``);
    every optimal bias it sets must be a prior in (0, ``max_prior``). Returns (box AP on those
    images, the last losses)."""
    torch.manual_seed(0)
    dataset = shapes_dataset(cfg, data_dir, num_images)
    model = build_model(cfg)
    losses, bias_reports = overfit_shapes(cfg, model, dataset, iterations, warmup_iters)
    assert all(0 < report["pi"] < max_prior for report in bias_reports)
    return coco_ap(model, dataset), losses


def coco_ap(model, dataset, iou_type="bbox", num_images=None):
    """COCO AP (IoU 0.5:0.95, pycocotools) of ``model`` on the first ``num_images`` images of
    ``dataset`` (all by default); predictions are brought back to the original image size, masks
    pasted into it. 0 when the model detects nothing."""
    image_indices = range(len(dataset) if num_images is None else num_images)
    model.eval()
    predictions = []
    with torch.no_grad():
        for idx in image_indices:
            image, _, _ = dataset[idx]
            info = dataset.get_img_info(idx)
            prediction = model([image])[0].resize((info["width"], info["height"]))
            if prediction.has_field("mask"):
                # The evaluator wants masks pasted at the original image size (as the engine does).
                prediction.add_field("mask", Masker(threshold=0.5)(prediction.get_field("mask"), prediction)[0])
            predictions.append(prediction)

    if iou_type == "bbox":
        results = []
        for idx, prediction in zip(image_indices, predictions):
            detections = prediction.convert("xywh")
            for box, score, label in zip(detections.bbox.tolist(), detections.get_field("scores").tolist(),
                                         detections.get_field("labels").tolist()):
                results.append({"image_id": dataset.id_to_img_map[idx], "bbox": box, "score": score,
                                "category_id": dataset.contiguous_category_id_to_json_id[label]})
    else:
        results = prepare_for_coco_segmentation(predictions, dataset)
    if not results:
        return 0.0
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = COCOeval(dataset.coco, dataset.coco.loadRes(results), iou_type)
        evaluator.params.imgIds = [dataset.id_to_img_map[i] for i in image_indices]
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return float(evaluator.stats[0])
