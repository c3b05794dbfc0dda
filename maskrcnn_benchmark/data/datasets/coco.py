"""COCO-format detection datasets (real COCO, tiny_coco, the generated shapes, users' own)."""
import collections
import contextlib
import io
import logging
import math
import os

import torch
import torchvision

from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.box_convention import CONTINUOUS
from maskrcnn_benchmark.structures.segmentation_mask import SegmentationMask

from .image_loading import check_image_size, get_with_corrupt_fallback, read_image

logger = logging.getLogger(__name__)

# boxes narrower or lower than this (in pixels) cannot be learned and are dropped
MIN_BOX_SIDE = 1.0
# a polygon needs 3 points (6 numbers) to enclose an area
MIN_POLYGON_COORDS = 6
_SHOWN = 5  # how many culprits an error or warning lists


def _is_usable(ann):
    _, _, w, h = ann["bbox"]
    return ann.get("iscrowd", 0) == 0 and w >= MIN_BOX_SIDE and h >= MIN_BOX_SIDE


def has_valid_annotation(anno):
    """True when at least one annotation is a non-crowd box of at least 1 x 1 pixel."""
    return any(_is_usable(ann) for ann in anno)


def _first(items):
    items = list(items)
    return ", ".join(str(i) for i in items[:_SHOWN]) + (", ..." if len(items) > _SHOWN else "")


class COCODataset(torchvision.datasets.coco.CocoDetection):
    """A COCO json plus its image folder.

    ``__getitem__(idx)`` returns ``(image, target, idx)``. ``target`` is a BoxList (xyxy, in the
    image's pixel coordinates) with fields ``labels`` (contiguous ids 1..C) and ``masks``
    (SegmentationMask of polygons; multi-part polygons are kept).

    Crowd annotations are not in ``target``: the model must neither learn them as objects nor as
    background, so they are kept apart and returned, in original image coordinates, by
    ``get_crowd_boxes(idx)`` (COCOeval reads them from the json itself). Boxes with a side below
    1 pixel are dropped (counted and logged once). With ``remove_images_without_annotations``
    (training) images without any usable box are left out; for testing every image is kept.

    The json is checked when the dataset is built; each problem raises an error naming the file
    and the image or annotation: duplicate image or annotation ids, annotations of an unknown
    image or category, malformed or non-finite boxes, boxes entirely outside their image, images
    without a size, missing image files. Polygon parts of fewer than 3 points enclose nothing:
    they are removed here, for training and for the evaluation alike (pycocotools would fail on
    them), and logged; an annotation left without any polygon is a box-only annotation, listed in
    ``annotations_without_mask`` (a mask model refuses such a dataset). When an image is read its
    size is checked against the json (``check_image_size``).

    A json without an ``annotations`` list (an image-info file such as COCO's test-dev) gives a
    dataset with ``has_annotations = False``: every image is kept and the evaluation writes the
    results file of the evaluation server instead of scoring.

    ``corrupt_image_policy`` (set by ``make_data_loader`` from DATALOADER.SKIP_CORRUPT_IMAGES):
    see ``image_loading.get_with_corrupt_fallback``.
    """

    def __init__(self, ann_file, root, remove_images_without_annotations, transforms=None):
        if not os.path.isfile(ann_file):
            raise FileNotFoundError("COCO annotation file not found: {}".format(ann_file))
        if not os.path.isdir(root):
            raise FileNotFoundError("COCO image folder not found: {}".format(root))
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
            super().__init__(root, ann_file)
        self.ann_file = ann_file
        self.has_annotations = "annotations" in self.coco.dataset
        self.ids = sorted(self.ids)
        self._check_json()
        self.annotations_without_mask = self._drop_degenerate_polygons()
        self._check_image_files()

        if remove_images_without_annotations:
            self.ids = [img_id for img_id in self.ids
                        if has_valid_annotation(self.coco.imgToAnns[img_id])]

        self.categories = {cat["id"]: cat["name"] for cat in self.coco.cats.values()}
        self.json_category_id_to_contiguous_id = {
            json_id: contiguous for contiguous, json_id in enumerate(sorted(self.coco.cats), 1)}
        self.contiguous_category_id_to_json_id = {
            contiguous: json_id for json_id, contiguous in self.json_category_id_to_contiguous_id.items()}
        self.id_to_img_map = dict(enumerate(self.ids))
        self._transforms = transforms
        self.skip_corrupt_images = False
        self._log_dropped_boxes(ann_file)

    # ------------------------------------------------------------------ checks of the json
    def _check_json(self):
        where = self.ann_file
        raw = self.coco.dataset
        if not raw.get("categories"):
            raise ValueError("{} has no categories; a COCO json needs a 'categories' list, even an image-info "
                             "file for a split without annotations".format(where))
        image_ids = collections.Counter(image["id"] for image in raw.get("images", []))
        duplicates = [i for i, n in image_ids.items() if n > 1]
        if duplicates:
            raise ValueError("{}: image ids {} appear more than once in 'images' (pycocotools would keep only "
                             "the last of each)".format(where, _first(duplicates)))
        ann_ids = collections.Counter(ann.get("id") for ann in raw.get("annotations", []))
        duplicates = [i for i, n in ann_ids.items() if n > 1]
        if duplicates:
            raise ValueError("{}: annotation ids {} appear more than once (pycocotools would keep only the "
                             "last of each)".format(where, _first(duplicates)))
        unsized = [image.get("file_name") for image in raw.get("images", [])
                   if not (isinstance(image.get("width"), (int, float)) and isinstance(image.get("height"), (int, float))
                           and image["width"] > 0 and image["height"] > 0)]
        if unsized:
            raise ValueError("{}: images {} have no positive 'width' and 'height'; the evaluation needs the size "
                             "of every image".format(where, _first(unsized)))
        for ann in self.coco.anns.values():
            self._check_annotation(ann)

    def _check_annotation(self, ann):
        where = self.ann_file
        image = self.coco.imgs.get(ann.get("image_id"))
        if image is None:
            raise ValueError("{}: annotation {} refers to image_id {}, which is not in 'images'".format(
                where, ann.get("id"), ann.get("image_id")))
        name = "annotation {} of image {} (id {}) in {}".format(ann.get("id"), image.get("file_name"),
                                                                ann["image_id"], where)
        if ann.get("category_id") not in self.coco.cats:
            raise ValueError("{} has category_id {}, which is not in the categories of {}".format(
                name, ann.get("category_id"), self.root))
        bbox = ann.get("bbox")
        if not (isinstance(bbox, (list, tuple)) and len(bbox) == 4
                and all(isinstance(v, (int, float)) and math.isfinite(v) for v in bbox)):
            raise ValueError("{} has bbox {!r}; expected 4 finite numbers [x, y, width, height]".format(name, bbox))
        x, y, w, h = bbox
        if w > 0 and h > 0 and (x >= image["width"] or y >= image["height"] or x + w <= 0 or y + h <= 0):
            raise ValueError("{} has bbox {} entirely outside the {}x{} image".format(
                name, bbox, image["width"], image["height"]))

    def _drop_degenerate_polygons(self):
        """Remove polygon parts of fewer than 3 points from the in-memory json (so training and
        pycocotools see the same ground truth); returns the ids of non-crowd annotations left
        without any mask."""
        removed_parts, without_mask = 0, []
        for ann in self.coco.anns.values():
            segmentation = ann.get("segmentation")
            if isinstance(segmentation, dict):  # RLE
                continue
            if segmentation is None:
                segmentation = []
            if not isinstance(segmentation, list):
                raise ValueError("annotation {} of image {} in {}: segmentation must be a list of polygons or an "
                                 "RLE dict, got {}".format(ann.get("id"), ann.get("image_id"), self.ann_file,
                                                           type(segmentation).__name__))
            kept = [part for part in segmentation
                    if isinstance(part, list) and len(part) >= MIN_POLYGON_COORDS and len(part) % 2 == 0]
            removed_parts += len(segmentation) - len(kept)
            if len(kept) != len(segmentation) or "segmentation" not in ann:
                ann["segmentation"] = kept
            if not kept and ann.get("iscrowd", 0) == 0:
                without_mask.append(ann.get("id"))
        if removed_parts:
            logger.warning("%s: removed %d polygon parts with fewer than 3 points (they enclose nothing)",
                           self.ann_file, removed_parts)
        if without_mask:
            logger.warning("%s: %d non-crowd annotations have no polygon of 3 or more points (box-only): %s",
                           self.ann_file, len(without_mask), _first(without_mask))
        return without_mask

    def _check_image_files(self):
        missing, folders = [], []
        for img_id in self.ids:
            path = os.path.join(self.root, self.coco.imgs[img_id]["file_name"])
            if os.path.isdir(path):
                folders.append(path)
            elif not os.path.isfile(path):
                missing.append(path)
        if folders:
            raise IsADirectoryError("{}: {} image paths are directories, not image files: {}".format(
                self.ann_file, len(folders), _first(folders)))
        if missing:
            raise FileNotFoundError("{}: {} of {} image files are missing under {}: {}".format(
                self.ann_file, len(missing), len(self.ids), self.root, _first(missing)))

    def _log_dropped_boxes(self, ann_file):
        degenerate = sum(1 for img_id in self.ids for ann in self.coco.imgToAnns[img_id]
                         if ann.get("iscrowd", 0) == 0 and not _is_usable(ann))
        if degenerate:
            logger.info("%s: dropped %d boxes with a side below %.0f pixel",
                        ann_file, degenerate, MIN_BOX_SIDE)

    # ------------------------------------------------------------------ samples
    def __len__(self):
        return len(self.ids)

    def __getitem__(self, idx):
        return get_with_corrupt_fallback(self, idx, self._load_sample)

    def _load_sample(self, idx):
        img_id = self.id_to_img_map[idx]
        info = self.coco.imgs[img_id]
        path = os.path.join(self.root, info["file_name"])
        image = read_image(path)
        check_image_size(image, (info["width"], info["height"]), path, self.ann_file)
        target = self._build_target(self.coco.imgToAnns[img_id], image.size)
        if self._transforms is not None:
            image, target = self._transforms(image, target)
        return image, target, idx

    def _build_target(self, anns, image_size):
        anns = [ann for ann in anns if _is_usable(ann)]
        boxes = torch.as_tensor([ann["bbox"] for ann in anns], dtype=torch.float32).reshape(-1, 4)
        # continuous boxes, as annotated; the transforms move them into the model's box convention
        target = BoxList(boxes, image_size, mode="xywh").convert("xyxy", CONTINUOUS)
        labels = [self.json_category_id_to_contiguous_id[ann["category_id"]] for ann in anns]
        target.add_field("labels", torch.tensor(labels, dtype=torch.int64))
        target.add_field("masks", SegmentationMask([ann["segmentation"] for ann in anns], image_size, mode="poly"))
        return target.clip_to_image(remove_empty=True, convention=CONTINUOUS)

    def get_img_info(self, index):
        """``{"height", "width", "id", "file_name", ...}`` of the image at ``index``."""
        return self.coco.imgs[self.id_to_img_map[index]]

    def get_crowd_boxes(self, index):
        """The crowd regions of image ``index`` as a BoxList (xyxy, original size) with labels."""
        img_id = self.id_to_img_map[index]
        info = self.coco.imgs[img_id]
        crowd = [ann for ann in self.coco.imgToAnns[img_id] if ann.get("iscrowd", 0)]
        boxes = torch.as_tensor([ann["bbox"] for ann in crowd], dtype=torch.float32).reshape(-1, 4)
        boxes = BoxList(boxes, (info["width"], info["height"]), mode="xywh").convert("xyxy", CONTINUOUS)
        labels = [self.json_category_id_to_contiguous_id[ann["category_id"]] for ann in crowd]
        boxes.add_field("labels", torch.tensor(labels, dtype=torch.int64))
        return boxes

    def num_categories(self):
        """The number of object categories (background not counted)."""
        return len(self.coco.cats)
