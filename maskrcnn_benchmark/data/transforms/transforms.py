"""Joint image + target transforms: every geometric change of the image is applied to the boxes
and masks of its target too. Inputs are PIL RGB images; ``ToTensor`` turns them into tensors.

Data sets give target boxes in continuous coordinates (what annotations mean); ``ToBoxConvention``
turns them into the model's box convention first, so the resize scales and the flips mirror them
as maskrcnn-benchmark does for its own boxes."""
import random

import torch
import torchvision.transforms as T
import torchvision.transforms.functional as F

from maskrcnn_benchmark.structures.bounding_box import FLIP_LEFT_RIGHT, FLIP_TOP_BOTTOM, BoxList
from maskrcnn_benchmark.structures.box_convention import CONTINUOUS, DEFAULT_BOX_CONVENTION, box_convention


class Compose(object):
    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, image, target):
        for transform in self.transforms:
            image, target = transform(image, target)
        return image, target

    def __repr__(self):
        lines = ["    {}".format(t) for t in self.transforms]
        return "Compose(\n{}\n)".format("\n".join(lines))


class ToBoxConvention(object):
    """Target boxes from the data set's continuous coordinates into ``convention``'s: with
    inclusive pixel corners the far corner moves one pixel in (a COCO ``[x, y, w, h]`` becomes
    ``[x, y, x + w - 1, y + h - 1]``), and a box left with ``x2 <= x1`` or ``y2 <= y1`` is dropped
    with its fields (maskrcnn-benchmark's data sets drop those, i.e. boxes at most one pixel wide)."""

    def __init__(self, convention=DEFAULT_BOX_CONVENTION):
        self.convention = box_convention(convention)

    def __call__(self, image, target=None):
        if target is None or not self.convention.pixel_offset:
            return image, target
        mode = target.mode
        boxes = target.convert("xyxy", CONTINUOUS)
        converted = BoxList(self.convention.from_continuous(boxes.bbox), boxes.size, mode="xyxy")
        converted._copy_extra_fields(boxes)
        x1, y1, x2, y2 = converted.bbox.unbind(dim=1)
        converted = converted[(x2 > x1) & (y2 > y1)]
        return image, converted.convert(mode, self.convention)

    def __repr__(self):
        return "ToBoxConvention({})".format(self.convention)


class Resize(object):
    """Scale so the shorter side is ``min_size`` (one drawn at random when a tuple is given,
    for multi-scale training) unless the longer side would then exceed ``max_size``; the scaled
    side is truncated or rounded to whole pixels as the box ``convention`` says."""

    def __init__(self, min_size, max_size, convention=DEFAULT_BOX_CONVENTION):
        if not isinstance(min_size, (list, tuple)):
            min_size = (min_size,)
        if len(min_size) == 0:
            raise ValueError("Resize needs at least one min_size")
        self.min_size = tuple(int(s) for s in min_size)
        self.max_size = int(max_size)
        self.convention = box_convention(convention)

    def get_size(self, image_size):
        """The output ``(height, width)`` for an input of ``(width, height)``."""
        width, height = image_size
        size = random.choice(self.min_size)
        short, long = float(min(width, height)), float(max(width, height))
        if long / short * size > self.max_size:
            size = int(round(self.max_size * short / long))
        # at least one pixel per side: a 1 x 3000 strip must not become 0 pixels high
        if width <= height:
            return max(self.convention.resized_side(size * height / width), 1), max(size, 1)
        return max(size, 1), max(self.convention.resized_side(size * width / height), 1)

    def __call__(self, image, target=None):
        height, width = self.get_size(image.size)
        image = F.resize(image, [height, width])
        if target is not None:
            target = target.resize(image.size)
        return image, target

    def __repr__(self):
        return "Resize(min_size={}, max_size={}, convention={})".format(self.min_size, self.max_size, self.convention)


class RandomHorizontalFlip(object):
    """Mirror left-right with probability ``prob``; boxes are mirrored in the box ``convention``."""

    def __init__(self, prob=0.5, convention=DEFAULT_BOX_CONVENTION):
        self.prob = prob
        self.convention = box_convention(convention)

    def __call__(self, image, target=None):
        if random.random() < self.prob:
            image = F.hflip(image)
            if target is not None:
                target = target.transpose(FLIP_LEFT_RIGHT, self.convention)
        return image, target


class RandomVerticalFlip(object):
    """Mirror top-bottom with probability ``prob``; boxes are mirrored in the box ``convention``
    (maskrcnn-benchmark omits the pixel offset in this direction only; here both directions keep
    a box on the same pixels)."""

    def __init__(self, prob=0.5, convention=DEFAULT_BOX_CONVENTION):
        self.prob = prob
        self.convention = box_convention(convention)

    def __call__(self, image, target=None):
        if random.random() < self.prob:
            image = F.vflip(image)
            if target is not None:
                target = target.transpose(FLIP_TOP_BOTTOM, self.convention)
        return image, target


class ColorJitter(object):
    """Photometric jitter of the image only; the target is unchanged."""

    def __init__(self, brightness=None, contrast=None, saturation=None, hue=None):
        self.color_jitter = T.ColorJitter(
            brightness=brightness or 0, contrast=contrast or 0,
            saturation=saturation or 0, hue=hue or 0)

    def __call__(self, image, target=None):
        return self.color_jitter(image), target


class ToTensor(object):
    """PIL image -> float tensor C x H x W in [0, 1] (RGB)."""

    def __call__(self, image, target=None):
        return F.to_tensor(image), target


class Normalize(object):
    """``(image - mean) / std``; with ``to_bgr255`` the image is first turned into BGR in
    [0, 255], the format of Caffe2-trained backbones."""

    def __init__(self, mean, std, to_bgr255=True):
        self.mean = list(mean)
        self.std = list(std)
        self.to_bgr255 = to_bgr255

    def __call__(self, image, target=None):
        if self.to_bgr255:
            image = image[[2, 1, 0]] * 255
        image = F.normalize(image, mean=self.mean, std=self.std)
        return image, target
