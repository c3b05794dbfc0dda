"""COCO-format detection datasets (real COCO, tiny_coco, the generated shapes)."""
import contextlib
import io
import logging
import os

import torch
import torchvision

from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.segmentation_mask import SegmentationMask

from .image_loading import get_with_corrupt_fallback, load_rgb_image

logger = logging.getLogger(__name__)

# boxes narrower or lower than this (in pixels) cannot be learned and are dropped
MIN_BOX_SIDE = 1.0


def _is_usable(ann):
    _, _, w, h = ann["bbox"]
    return ann.get("iscrowd", 0) == 0 and w >= MIN_BOX_SIDE and h >= MIN_BOX_SIDE


def has_valid_annotation(anno):
    """True when at least one annotation is a non-crowd box of at least 1 x 1 pixel."""
    return any(_is_usable(ann) for ann in anno)


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

    Set ``skip_corrupt_images = True`` to replace an undecodable image by the next readable one
    (with a warning) instead of raising an error that names the file.
    """

    def __init__(self, ann_file, root, remove_images_without_annotations, transforms=None):
        if not os.path.isfile(ann_file):
            raise FileNotFoundError("COCO annotation file not found: {}".format(ann_file))
        if not os.path.isdir(root):
            raise FileNotFoundError("COCO image folder not found: {}".format(root))
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
            super().__init__(root, ann_file)
        self.ids = sorted(self.ids)
        self._check_category_ids()

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

    def _check_category_ids(self):
        for ann in self.coco.anns.values():
            if ann["category_id"] not in self.coco.cats:
                image = self.coco.imgs.get(ann["image_id"], {})
                raise ValueError("annotation {} of image {} (id {}) has category_id {}, which is not "
                                 "in the categories of {}".format(
                                     ann.get("id"), image.get("file_name"), ann["image_id"],
                                     ann["category_id"], self.root))

    def _log_dropped_boxes(self, ann_file):
        degenerate = sum(1 for img_id in self.ids for ann in self.coco.imgToAnns[img_id]
                         if ann.get("iscrowd", 0) == 0 and not _is_usable(ann))
        if degenerate:
            logger.info("%s: dropped %d boxes with a side below %.0f pixel",
                        ann_file, degenerate, MIN_BOX_SIDE)

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, idx):
        return get_with_corrupt_fallback(self, idx, self._load_sample)

    def _load_sample(self, idx):
        img_id = self.id_to_img_map[idx]
        image = load_rgb_image(os.path.join(self.root, self.coco.imgs[img_id]["file_name"]))
        target = self._build_target(self.coco.imgToAnns[img_id], image.size, img_id)
        if self._transforms is not None:
            image, target = self._transforms(image, target)
        return image, target, idx

    def _build_target(self, anns, image_size, img_id):
        anns = [ann for ann in anns if _is_usable(ann)]
        boxes = torch.as_tensor([ann["bbox"] for ann in anns], dtype=torch.float32).reshape(-1, 4)
        target = BoxList(boxes, image_size, mode="xywh").convert("xyxy")
        labels = [self.json_category_id_to_contiguous_id[ann["category_id"]] for ann in anns]
        target.add_field("labels", torch.tensor(labels, dtype=torch.int64))
        polygons = []
        for ann in anns:
            segmentation = ann.get("segmentation")
            if not isinstance(segmentation, list):
                raise ValueError("annotation {} of image {} is not crowd but its segmentation is "
                                 "not a polygon list".format(ann.get("id"), self._file_name(img_id)))
            polygons.append(segmentation)
        target.add_field("masks", SegmentationMask(polygons, image_size, mode="poly"))
        return target.clip_to_image(remove_empty=True)

    def _file_name(self, img_id):
        return self.coco.imgs[img_id]["file_name"]

    def get_img_info(self, index):
        """``{"height", "width", "id", "file_name", ...}`` of the image at ``index``."""
        return self.coco.imgs[self.id_to_img_map[index]]

    def get_crowd_boxes(self, index):
        """The crowd regions of image ``index`` as a BoxList (xyxy, original size) with labels."""
        img_id = self.id_to_img_map[index]
        info = self.coco.imgs[img_id]
        crowd = [ann for ann in self.coco.imgToAnns[img_id] if ann.get("iscrowd", 0)]
        boxes = torch.as_tensor([ann["bbox"] for ann in crowd], dtype=torch.float32).reshape(-1, 4)
        boxes = BoxList(boxes, (info["width"], info["height"]), mode="xywh").convert("xyxy")
        labels = [self.json_category_id_to_contiguous_id[ann["category_id"]] for ann in crowd]
        boxes.add_field("labels", torch.tensor(labels, dtype=torch.int64))
        return boxes
