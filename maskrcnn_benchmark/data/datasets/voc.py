"""PASCAL VOC 2007 / 2012 detection datasets (Annotations/*.xml, JPEGImages, ImageSets/Main)."""
import os
import xml.etree.ElementTree as ET

import torch

from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.box_convention import CONTINUOUS

from .image_loading import check_image_size, get_with_corrupt_fallback, read_image


class PascalVOCDataset(torch.utils.data.Dataset):
    """``__getitem__`` returns ``(image, target, index)``; ``target`` has fields ``labels``
    (1..20, 0 is background) and ``difficult`` (bool). With ``use_difficult=False`` the objects
    marked difficult are left out of the target; evaluation datasets keep them, flagged.

    VOC boxes are 1-based inclusive pixel indices; they become continuous coordinates
    ``(xmin - 1, ymin - 1, xmax, ymax)``, so that width = x2 - x1 counts the pixels covered.

    ``class_names`` (background first) replaces the 20 VOC classes for a dataset of one's own in
    the VOC layout. The ``<size>`` of each xml is required and checked against the decoded image.
    """

    CLASSES = (
        "__background__", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
        "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
        "sheep", "sofa", "train", "tvmonitor",
    )

    def __init__(self, data_dir, split, use_difficult=False, transforms=None, class_names=None):
        if class_names is not None:
            class_names = tuple(class_names)
            if not class_names or class_names[0] != "__background__":
                class_names = ("__background__",) + class_names
            self.CLASSES = class_names
        self.root = data_dir
        self.image_set = split
        self.keep_difficult = use_difficult
        self.transforms = transforms
        self.skip_corrupt_images = False
        self._annopath = os.path.join(data_dir, "Annotations", "{}.xml")
        self._imgpath = os.path.join(data_dir, "JPEGImages", "{}.jpg")
        split_file = os.path.join(data_dir, "ImageSets", "Main", "{}.txt".format(split))
        if not os.path.isfile(split_file):
            raise FileNotFoundError("VOC split file not found: {}".format(split_file))
        with open(split_file) as f:
            self.ids = [line.strip() for line in f if line.strip()]
        self.id_to_img_map = dict(enumerate(self.ids))
        self.class_to_ind = {name.lower(): i for i, name in enumerate(self.CLASSES)}
        self.categories = dict(enumerate(self.CLASSES))
        self.annotations = [self._parse(img_id) for img_id in self.ids]
        missing = [self._imgpath.format(i) for i in self.ids if not os.path.isfile(self._imgpath.format(i))]
        if missing:
            raise FileNotFoundError("VOC split {}: {} of {} images are missing: {}".format(
                split_file, len(missing), len(self.ids), ", ".join(missing[:5])))

    def _parse(self, img_id):
        path = self._annopath.format(img_id)
        if not os.path.isfile(path):
            raise FileNotFoundError("VOC annotation file not found: {}".format(path))
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError as err:
            raise ValueError("cannot parse VOC annotation {}: {}".format(path, err)) from err
        boxes, labels, difficult = [], [], []
        for obj in root.iter("object"):
            name = obj.find("name").text.strip().lower()
            if name not in self.class_to_ind:
                raise ValueError("{}: unknown class {!r}; the classes are {}".format(path, name, self.CLASSES[1:]))
            is_difficult = obj.find("difficult") is not None and int(obj.find("difficult").text) == 1
            try:
                box = obj.find("bndbox")
                xmin, ymin, xmax, ymax = (float(box.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax"))
            except (AttributeError, TypeError, ValueError):
                raise ValueError("{}: object {!r} has no valid <bndbox> with xmin, ymin, xmax, ymax".format(
                    path, name)) from None
            boxes.append([xmin - 1, ymin - 1, xmax, ymax])
            labels.append(self.class_to_ind[name])
            difficult.append(is_difficult)
        size = root.find("size")
        try:
            width, height = int(float(size.find("width").text)), int(float(size.find("height").text))
        except (AttributeError, TypeError, ValueError):
            width = height = 0
        if width <= 0 or height <= 0:
            raise ValueError("{}: no positive <size><width>/<height>; the evaluation needs the image size".format(path))
        return {
            "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            "labels": torch.tensor(labels, dtype=torch.int64),
            "difficult": torch.tensor(difficult, dtype=torch.bool),
            "width": width,
            "height": height,
        }

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, index):
        return get_with_corrupt_fallback(self, index, self._load_sample)

    def _load_sample(self, index):
        path = self._imgpath.format(self.ids[index])
        image = read_image(path)
        anno = self.annotations[index]
        check_image_size(image, (anno["width"], anno["height"]), path, self._annopath.format(self.ids[index]))
        target = self.get_groundtruth(index)
        if not self.keep_difficult:
            target = target[~target.get_field("difficult")]
        target = target.clip_to_image(remove_empty=True, convention=CONTINUOUS)
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target, index

    def get_groundtruth(self, index):
        """All objects of image ``index`` (difficult ones included) at the original size."""
        anno = self.annotations[index]
        target = BoxList(anno["boxes"], (anno["width"], anno["height"]), mode="xyxy")
        target.add_field("labels", anno["labels"])
        target.add_field("difficult", anno["difficult"])
        return target

    def get_img_info(self, index):
        anno = self.annotations[index]
        return {"height": anno["height"], "width": anno["width"], "id": self.ids[index],
                "file_name": os.path.basename(self._imgpath.format(self.ids[index]))}

    def num_categories(self):
        """The number of object categories (background not counted)."""
        return len(self.CLASSES) - 1

    def map_class_id_to_class_name(self, class_id):
        return self.CLASSES[class_id]
