"""Shared pieces of the benchmarks: settings, the two model builders (ours and torchvision's),
one synthetic batch fed to both, timing, peak memory and markdown tables.

Fairness is built in rather than left to the caller: every knob that exists on both sides (image
size, number of classes, RPN / RoI batch and top-n settings, frozen BatchNorm, which ResNet stages
train) is read from one ``BenchSettings`` and handed to both builders.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field

import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

MODEL_NAMES = ("faster_rcnn", "mask_rcnn", "retinanet")
MODEL_TITLES = {
    "faster_rcnn": "Faster R-CNN R-50-FPN",
    "mask_rcnn": "Mask R-CNN R-50-FPN",
    "retinanet": "RetinaNet R-50-FPN",
}
# The COCO configs users train with; the benchmark only overrides what fairness requires.
CONFIG_FILES = {
    "faster_rcnn": "configs/e2e_faster_rcnn_R_50_FPN_1x.yaml",
    "mask_rcnn": "configs/e2e_mask_rcnn_R_50_FPN_1x.yaml",
    "retinanet": "configs/retinanet/retinanet_R-50-FPN_1x.yaml",
    # Paper Table III: the same Faster R-CNN without the biased samplers, optimal bias, guided.
    "faster_rcnn_sampling_free": "configs/e2e_faster_rcnn_R_50_FPN_1x_sampling_free.yaml",
    # Paper Table VIII: the heuristic sample strategies (heuristics_cost.py).
    "faster_rcnn_ohem": "configs/e2e_faster_rcnn_R_50_FPN_1x_ohem.yaml",
    "faster_rcnn_iou_balanced": "configs/e2e_faster_rcnn_R_50_FPN_1x_iou_balanced.yaml",
    "faster_rcnn_isr": "configs/e2e_faster_rcnn_R_50_FPN_1x_isr.yaml",
    "retinanet_ghm": "configs/retinanet/retinanet_R-50-FPN_1x_ghm.yaml",
    "retinanet_sampling_free": "configs/retinanet/retinanet_R-50-FPN_1x_sampling_free.yaml",
}
# Our FREEZE_CONV_BODY_AT 2 (stem + res2 frozen) is torchvision's trainable_layers 3 (layer2-4).
FREEZE_CONV_BODY_AT = 2
TORCHVISION_TRAINABLE_LAYERS = 3
# Pixel statistics (RGB, 0-1 scale) used by both models' input normalisation.
PIXEL_MEAN = (0.485, 0.456, 0.406)
PIXEL_STD = (0.229, 0.224, 0.225)
OBJECTS_PER_IMAGE = 5


@dataclass
class BenchSettings:
    device: str = "cpu"
    image_size: int = 512  # height; also the width unless image_width is set
    image_width: int = None  # e.g. 1333 with image_size 800: the COCO configs' test size
    batch: int = 1
    iters: int = 5
    warmup: int = 2
    # Background included (COCO: 80 objects + background), as in our configs.
    num_classes: int = 81
    seed: int = 0
    # Shared RPN / RoI settings (torchvision's defaults, which are also the COCO FPN configs').
    rpn_pre_nms_top_n_train: int = 2000
    rpn_post_nms_top_n_train: int = 2000
    rpn_pre_nms_top_n_test: int = 1000
    rpn_post_nms_top_n_test: int = 1000
    # With random weights how many proposals survive the RPN's NMS is an accident of the
    # initialisation (measured at 512 px: 1000 for ours, 260 for torchvision at the configs' 0.7),
    # and it sets the RoI heads' cost. At 1.0 nothing is suppressed, so both RoI heads get
    # exactly the post-NMS top-n per image, as a trained RPN on COCO-sized images does.
    rpn_nms_thresh: float = 1.0
    rpn_batch_size_per_image: int = 256
    roi_batch_size_per_image: int = 512
    config_files: dict = field(default_factory=lambda: dict(CONFIG_FILES))

    def validate(self):
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda', got {self.device!r}")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' was asked for but torch.cuda.is_available() is False")
        for name in ("image_size", "batch", "iters"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.image_size < 64:
            raise ValueError(f"image_size must be >= 64 (the FPN's coarsest stride is 64), got {self.image_size}")
        if self.image_width is not None and self.image_width < 64:
            raise ValueError(f"image_width must be >= 64 (the FPN's coarsest stride is 64), got {self.image_width}")
        if not 0.0 < self.rpn_nms_thresh <= 1.0:
            raise ValueError(f"rpn_nms_thresh must be in (0, 1], got {self.rpn_nms_thresh}")
        if self.warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {self.warmup}")
        return self


def image_width(settings):
    return settings.image_width if settings.image_width is not None else settings.image_size


def parse_model_names(text):
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in MODEL_NAMES]
    if unknown or not names:
        raise ValueError(f"--models: unknown {unknown or text!r}; choose from {', '.join(MODEL_NAMES)}")
    return names


def add_common_arguments(parser):
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--image-size", type=int, default=512, help="image height in pixels (both models)")
    parser.add_argument(
        "--image-width", type=int, default=None, help="image width in pixels (default: --image-size, square)"
    )
    parser.add_argument("--batch", type=int, default=1, help="images per step")
    parser.add_argument("--iters", type=int, default=5, help="timed iterations (the median is reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed iterations first")
    parser.add_argument(
        "--rpn-nms-thresh",
        type=float,
        default=1.0,
        help="RPN NMS IoU threshold on both sides (1.0: keep every proposal; the configs use 0.7)",
    )
    parser.add_argument("--models", default=",".join(MODEL_NAMES), help="comma list of " + ", ".join(MODEL_NAMES))
    parser.add_argument("--json", default=None, help="also write the results to this file")
    return parser


def settings_from_args(args):
    return BenchSettings(
        device=args.device,
        image_size=args.image_size,
        image_width=args.image_width,
        batch=args.batch,
        iters=args.iters,
        warmup=args.warmup,
        rpn_nms_thresh=args.rpn_nms_thresh,
    ).validate()


# ---------------------------------------------------------------------------------------------
# Model builders
# ---------------------------------------------------------------------------------------------
def our_config(name, settings, sampling_free=False, variant=None, options=()):
    """Our config for ``name``: the repository's COCO yaml plus the shared fairness settings.

    ``sampling_free`` reads the detector's Sampling-Free yaml instead (no biased sampler in the
    RPN or RoI head, optimal bias init, guided loss scaling in both stages). The optimal bias
    only sets initial values; its one-off counting over the data is not part of a step and is
    not run. ``variant`` reads the ``<name>_<variant>`` yaml (e.g. "ohem"); ``options`` (KEY value
    pairs) are merged last."""
    from maskrcnn_benchmark.config import cfg as default_cfg

    if variant is None and sampling_free:
        variant = "sampling_free"
    key = name if variant is None else f"{name}_{variant}"
    if key not in settings.config_files:
        raise ValueError(f"no config file for {key!r}; known: {sorted(settings.config_files)}")
    path = settings.config_files[key]
    if not os.path.isabs(path):
        path = os.path.join(REPO_ROOT, path)
    cfg = default_cfg.clone()
    cfg.merge_from_file(path)
    cfg.MODEL.DEVICE = settings.device
    cfg.MODEL.WEIGHT = ""  # random init: nothing is loaded or downloaded
    cfg.MODEL.BACKBONE.FREEZE_CONV_BODY_AT = FREEZE_CONV_BODY_AT
    cfg.DATALOADER.SIZE_DIVISIBILITY = 32
    if name == "retinanet":
        cfg.MODEL.RETINANET.NUM_CLASSES = settings.num_classes
    else:
        cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES = settings.num_classes
        rpn = cfg.MODEL.RPN
        rpn.PRE_NMS_TOP_N_TRAIN = settings.rpn_pre_nms_top_n_train
        rpn.POST_NMS_TOP_N_TRAIN = settings.rpn_post_nms_top_n_train
        rpn.FPN_POST_NMS_TOP_N_TRAIN = settings.rpn_post_nms_top_n_train
        rpn.PRE_NMS_TOP_N_TEST = settings.rpn_pre_nms_top_n_test
        rpn.POST_NMS_TOP_N_TEST = settings.rpn_post_nms_top_n_test
        rpn.FPN_POST_NMS_TOP_N_TEST = settings.rpn_post_nms_top_n_test
        rpn.NMS_THRESH = settings.rpn_nms_thresh
        # torchvision keeps post_nms_top_n proposals per image, not per batch.
        rpn.FPN_POST_NMS_PER_BATCH = False
        rpn.BATCH_SIZE_PER_IMAGE = settings.rpn_batch_size_per_image
        cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = settings.roi_batch_size_per_image
    if name == "mask_rcnn":
        # torchvision pastes masks into the image in eval mode; ours does so with this switch.
        cfg.MODEL.ROI_MASK_HEAD.POSTPROCESS_MASKS = True
    cfg.merge_from_list(list(options))
    cfg.freeze()
    return cfg


def build_ours(name, settings, sampling_free=False, variant=None, options=()):
    from maskrcnn_benchmark.modeling.detector import build_detection_model

    cfg = our_config(name, settings, sampling_free, variant, options)
    torch.manual_seed(settings.seed)
    model = build_detection_model(cfg).to(settings.device)
    return model, cfg


def build_torchvision(name, settings):
    """torchvision's detector with the same head sizes, frozen BatchNorm and trainable stages as
    ours. The ``*_resnet50_fpn(weights=None, weights_backbone=None)`` builders would switch to
    trainable BatchNorm and train all five stages when no backbone weights are given, so the
    pieces are assembled here instead."""
    from torchvision.models.detection import FasterRCNN, MaskRCNN, RetinaNet
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
    from torchvision.ops.feature_pyramid_network import LastLevelP6P7
    from torchvision.ops.misc import FrozenBatchNorm2d

    torch.manual_seed(settings.seed)
    transform_args = dict(
        # Both sides given as they are, so torchvision's transform does not resize the images.
        min_size=min(settings.image_size, image_width(settings)),
        max_size=max(settings.image_size, image_width(settings)),
        image_mean=list(PIXEL_MEAN),
        image_std=list(PIXEL_STD),
    )
    if name == "retinanet":
        # P3-P7 with P6 computed from C5, as our R-50-FPN-RETINANET body (RETINANET.USE_C5).
        backbone = resnet_fpn_backbone(
            backbone_name="resnet50",
            weights=None,
            norm_layer=FrozenBatchNorm2d,
            trainable_layers=TORCHVISION_TRAINABLE_LAYERS,
            returned_layers=[2, 3, 4],
            extra_blocks=LastLevelP6P7(2048, 256),
        )
        # torchvision's RetinaNet has no background logit: num_classes - 1 sigmoid outputs, as ours.
        model = RetinaNet(
            backbone,
            num_classes=settings.num_classes - 1,
            nms_thresh=0.4,
            detections_per_img=100,
            **transform_args,
        )
        return model.to(settings.device)

    backbone = resnet_fpn_backbone(
        backbone_name="resnet50",
        weights=None,
        norm_layer=FrozenBatchNorm2d,
        trainable_layers=TORCHVISION_TRAINABLE_LAYERS,
    )
    detector_class = MaskRCNN if name == "mask_rcnn" else FasterRCNN
    model = detector_class(
        backbone,
        num_classes=settings.num_classes,
        rpn_pre_nms_top_n_train=settings.rpn_pre_nms_top_n_train,
        rpn_post_nms_top_n_train=settings.rpn_post_nms_top_n_train,
        rpn_pre_nms_top_n_test=settings.rpn_pre_nms_top_n_test,
        rpn_post_nms_top_n_test=settings.rpn_post_nms_top_n_test,
        rpn_nms_thresh=settings.rpn_nms_thresh,
        rpn_batch_size_per_image=settings.rpn_batch_size_per_image,
        box_batch_size_per_image=settings.roi_batch_size_per_image,
        **transform_args,
    )
    return model.to(settings.device)


def trainable_parameters(model):
    return [p for p in model.parameters() if p.requires_grad]


def count_trainable(model):
    return sum(p.numel() for p in trainable_parameters(model))


# ---------------------------------------------------------------------------------------------
# One synthetic batch, in both formats
# ---------------------------------------------------------------------------------------------
@dataclass
class SyntheticBatch:
    images: list  # per image 3 x S x S, RGB in [0, 1]
    boxes: list  # per image K x 4, xyxy
    labels: list  # per image K, in 1 .. num_classes - 1
    masks: list  # per image K x S x S uint8 (the boxes filled)


def make_batch(settings):
    """Random images and ``OBJECTS_PER_IMAGE`` random boxes each (side 10-50% of the image)."""
    generator = torch.Generator().manual_seed(settings.seed)
    height, width = settings.image_size, image_width(settings)
    extent = torch.tensor([float(width), float(height)])  # (x, y)
    images, boxes, labels, masks = [], [], [], []
    for _ in range(settings.batch):
        images.append(torch.rand(3, height, width, generator=generator))
        sides = (0.1 + 0.4 * torch.rand(OBJECTS_PER_IMAGE, 2, generator=generator)) * extent
        corners = torch.rand(OBJECTS_PER_IMAGE, 2, generator=generator) * (extent - sides)
        xyxy = torch.cat([corners, corners + sides], dim=1).floor()
        boxes.append(xyxy)
        labels.append(torch.randint(1, settings.num_classes, (OBJECTS_PER_IMAGE,), generator=generator))
        image_masks = torch.zeros(OBJECTS_PER_IMAGE, height, width, dtype=torch.uint8)
        for mask, (x1, y1, x2, y2) in zip(image_masks, xyxy.long().tolist()):
            mask[y1:y2, x1:x2] = 1
        masks.append(image_masks)
    return SyntheticBatch(images, boxes, labels, masks)


def our_targets(batch, name, device):
    """Per image BoxLists with "labels" (and polygon "masks" for Mask R-CNN)."""
    from maskrcnn_benchmark.structures.bounding_box import BoxList
    from maskrcnn_benchmark.structures.segmentation_mask import SegmentationMask

    targets = []
    for image, boxes, labels in zip(batch.images, batch.boxes, batch.labels):
        size = (image.shape[2], image.shape[1])  # (width, height)
        target = BoxList(boxes.clone(), size, mode="xyxy")
        target.add_field("labels", labels.clone())
        if name == "mask_rcnn":
            polygons = [[[x1, y1, x2, y1, x2, y2, x1, y2]] for x1, y1, x2, y2 in boxes.tolist()]
            target.add_field("masks", SegmentationMask(polygons, size, mode="poly"))
        targets.append(target.to(device))
    return targets


def torchvision_targets(batch, name, device):
    targets = []
    for boxes, labels, masks in zip(batch.boxes, batch.labels, batch.masks):
        # RetinaNet in torchvision indexes its logits by label: shift 1..C-1 to 0..C-2.
        target = {"boxes": boxes.to(device), "labels": (labels - 1 if name == "retinanet" else labels).to(device)}
        if name == "mask_rcnn":
            target["masks"] = masks.to(device)
        targets.append(target)
    return targets


def our_inputs(images, cfg):
    """What our data pipeline does after loading: normalise, then pad into an ImageList."""
    from maskrcnn_benchmark.structures.image_list import to_image_list

    mean = torch.tensor(PIXEL_MEAN, device=images[0].device)[:, None, None]
    std = torch.tensor(PIXEL_STD, device=images[0].device)[:, None, None]
    return to_image_list([(image - mean) / std for image in images], cfg.DATALOADER.SIZE_DIVISIBILITY)


# ---------------------------------------------------------------------------------------------
# Measurement
# ---------------------------------------------------------------------------------------------
def synchronize(device):
    if device == "cuda":
        torch.cuda.synchronize()


def time_interleaved(calls, iters, warmup, device):
    """Median seconds per call for each ``{label: fn}``. The calls alternate within each
    iteration so that load drifting on a shared machine hits every contender alike."""
    for _ in range(warmup):
        for fn in calls.values():
            fn()
    samples = {label: [] for label in calls}
    for _ in range(iters):
        for label, fn in calls.items():
            synchronize(device)
            start = time.perf_counter()
            fn()
            synchronize(device)
            samples[label].append(time.perf_counter() - start)
    return {label: statistics.median(values) for label, values in samples.items()}


def peak_memory_bytes(fn, device):
    """Peak memory one call of ``fn`` allocates above what is allocated when it starts (weights,
    optimizer state, inputs), or None when it cannot be measured.

    CUDA: the caching allocator's peak counter. CPU: the sum over time of the tensor allocations
    and frees that the PyTorch profiler records (process RSS would also count freed memory the
    allocator keeps, so it says little about one step)."""
    if device == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        fn()
        synchronize(device)
        return torch.cuda.max_memory_allocated() - before
    return _cpu_peak_from_profiler(fn)


def _cpu_peak_from_profiler(fn):
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    try:
        # Every allocation (+bytes) and free (-bytes) is a "[memory]" event.
        events = prof.profiler.kineto_results.events()
        changes = sorted((e.start_ns(), e.nbytes()) for e in events if e.name() == "[memory]")
    except AttributeError:  # the profiler's result layout changed: say so rather than guess
        return None
    if not changes:
        return None
    current = peak = 0
    for _, delta in changes:
        current += delta
        peak = max(peak, current)
    return peak


def mib(num_bytes):
    return None if num_bytes is None else num_bytes / 2**20


def ratio(ours, theirs):
    if ours is None or theirs is None or theirs == 0:
        return None
    return ours / theirs


def format_number(value, digits=1):
    if value is None:
        return "n/a"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.{digits}f}"


def markdown_table(headers, rows):
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(cell) for cell in row) + " |")
    return "\n".join(lines)


def environment_line(settings):
    if settings.device == "cuda":
        where = torch.cuda.get_device_name(0)
    else:
        where = f"CPU, {torch.get_num_threads()} torch threads"
    return (
        f"device: {where}; torch {torch.__version__}; image {settings.image_size}x{image_width(settings)} (h x w), "
        f"batch {settings.batch}, median of {settings.iters} after {settings.warmup} warm-up, "
        f"RPN NMS threshold {settings.rpn_nms_thresh:g}"
    )


def print_and_save(args, settings, note, measure, table, json_key):
    """What every benchmark's main ends with: the environment line and ``note``, then
    ``rows = measure()`` printed as ``table(rows)`` and, with ``--json``, written under ``json_key``
    beside the settings. Returns the rows."""
    print(environment_line(settings))
    print(note + "\n")
    rows = measure()
    print(table(rows))
    if args.json:
        write_json(args.json, {"settings": settings_dict(settings), json_key: rows})
    return rows


def write_json(path, payload):
    with open(path, "w") as handle:
        json.dump(payload, handle, indent=2)


def settings_dict(settings):
    return asdict(settings)


def make_parser(description):
    return add_common_arguments(argparse.ArgumentParser(description=description))
