"""``COCODemo``: a config and weights in, detections (a BoxList) for one image out."""
import os

import numpy as np
import torch
from PIL import Image

from maskrcnn_benchmark.data.datasets.image_loading import read_image as read_rgb_image
from maskrcnn_benchmark.data.transforms import build_transforms
from maskrcnn_benchmark.modeling.detector import build_detection_model
from maskrcnn_benchmark.modeling.roi_heads.mask_head.inference import Masker
from maskrcnn_benchmark.structures.image_list import to_image_list
from maskrcnn_benchmark.utils.checkpoint import DetectronCheckpointer, weights_to_evaluate
from maskrcnn_benchmark.utils.device import resolve_device

COCO_CATEGORIES = (
    "__background", "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck",
    "boat", "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat",
    "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)
VOC_CATEGORIES = (
    "__background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)


def category_names_for(cfg):
    """Class names (index = contiguous label, 0 = background) for the config's training data."""
    datasets = tuple(cfg.DATASETS.TRAIN) + tuple(cfg.DATASETS.TEST)
    if any(name.startswith("shapes_") for name in datasets):
        from maskrcnn_benchmark.data.datasets.shapes import CLASS_NAMES

        return ("__background",) + tuple(CLASS_NAMES)
    if any(name.startswith("voc_") for name in datasets):
        return VOC_CATEGORIES
    return COCO_CATEGORIES


def read_image(image):
    """A BGR uint8 array from a path or an array (arrays are taken as OpenCV-style BGR)."""
    if isinstance(image, (str, os.PathLike)):  # the datasets' reader: every PIL mode, EXIF orientation
        return np.ascontiguousarray(np.asarray(read_rgb_image(image))[:, :, ::-1])
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an image path or an H x W x 3 BGR array, got {getattr(image, 'shape', type(image))}")
    if image.dtype != np.uint8:
        # a float image in [0, 1] or a 16-bit one would be scored on the wrong scale without a word
        raise ValueError(f"expected a uint8 BGR array (0-255, as cv2.imread gives), got dtype {image.dtype} "
                         f"(values {image.min()}..{image.max()}); convert it, e.g. (image * 255).astype(np.uint8) "
                         "for floats in [0, 1], or pass the file path")
    return image


class COCODemo(object):
    """Runs a detector on single images.

    ``weights``: a checkpoint file (or catalog:// name / URL); default: the newest checkpoint of
    OUTPUT_DIR, else MODEL.WEIGHT. The weights must cover every parameter of the model; finding none
    is an error naming where it looked, unless ``random_weights`` asks for an untrained model.
    Detections below ``confidence_threshold`` are dropped.
    """

    def __init__(self, cfg, weights=None, confidence_threshold=0.5, categories=None, mask_threshold=0.5,
                 random_weights=False):
        self.cfg = cfg.clone()
        weights = weights_to_evaluate(self.cfg, weights, random_weights, flag="--weights")
        self.device = resolve_device(cfg.MODEL.DEVICE)
        self.model = build_detection_model(self.cfg)
        self.model.eval()
        self.model.to(self.device)
        if weights is not None:
            DetectronCheckpointer(self.cfg, self.model).load(weights, use_latest=False, match="parameters")
        self.transforms = build_transforms(self.cfg, is_train=False)
        self.masker = Masker(threshold=mask_threshold, padding=1)
        self.confidence_threshold = confidence_threshold
        self.categories = tuple(categories) if categories is not None else category_names_for(self.cfg)

    @torch.no_grad()
    def compute_prediction(self, image):
        """All detections of the BGR image, boxes (and masks) in its own pixel coordinates."""
        image = read_image(image)
        height, width = image.shape[:2]
        pil_image = Image.fromarray(np.ascontiguousarray(image[:, :, ::-1]))  # BGR -> RGB
        tensor, _ = self.transforms(pil_image, None)
        image_list = to_image_list([tensor], self.cfg.DATALOADER.SIZE_DIVISIBILITY).to(self.device)
        prediction = self.model(image_list)[0].to(torch.device("cpu"))
        prediction = prediction.resize((width, height))
        if prediction.has_field("mask"):
            masks = prediction.get_field("mask")
            if masks.shape[-2:] != (height, width):  # M x M probabilities: paste into the image
                masks = self.masker([masks], [prediction])[0]
            prediction.add_field("mask", masks)
        return prediction

    def select_top_predictions(self, predictions):
        """Detections scoring at least the threshold, best first."""
        scores = predictions.get_field("scores")
        keep = torch.nonzero(scores >= self.confidence_threshold).squeeze(1)
        predictions = predictions[keep]
        order = predictions.get_field("scores").argsort(descending=True)
        return predictions[order]

    def predict(self, image):
        """Path or BGR array -> the BoxList of confident detections (fields scores, labels[, mask])."""
        return self.select_top_predictions(self.compute_prediction(image))

    def label_names(self, predictions):
        labels = predictions.get_field("labels").tolist()
        return [self.categories[i] if 0 <= i < len(self.categories) else f"class {i}" for i in labels]
