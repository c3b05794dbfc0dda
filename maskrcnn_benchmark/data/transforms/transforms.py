"""Joint image + target transforms: every geometric change of the image is applied to the boxes
and masks of its target too. Inputs are PIL RGB images; ``ToTensor`` turns them into tensors."""
import random

import torch
import torchvision.transforms as T
import torchvision.transforms.functional as F

from maskrcnn_benchmark.structures.bounding_box import FLIP_LEFT_RIGHT, FLIP_TOP_BOTTOM


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


class Resize(object):
    """Scale so the shorter side is ``min_size`` (one drawn at random when a tuple is given,
    for multi-scale training) unless the longer side would then exceed ``max_size``."""

    def __init__(self, min_size, max_size):
        if not isinstance(min_size, (list, tuple)):
            min_size = (min_size,)
        if len(min_size) == 0:
            raise ValueError("Resize needs at least one min_size")
        self.min_size = tuple(int(s) for s in min_size)
        self.max_size = int(max_size)

    def get_size(self, image_size):
        """The output ``(height, width)`` for an input of ``(width, height)``."""
        width, height = image_size
        size = random.choice(self.min_size)
        short, long = float(min(width, height)), float(max(width, height))
        if long / short * size > self.max_size:
            size = int(round(self.max_size * short / long))
        # at least one pixel per side: a 1 x 3000 strip must not become 0 pixels high
        if width <= height:
            return max(int(round(size * height / width)), 1), max(size, 1)
        return max(size, 1), max(int(round(size * width / height)), 1)

    def __call__(self, image, target=None):
        height, width = self.get_size(image.size)
        image = F.resize(image, [height, width])
        if target is not None:
            target = target.resize(image.size)
        return image, target

    def __repr__(self):
        return "Resize(min_size={}, max_size={})".format(self.min_size, self.max_size)


class RandomHorizontalFlip(object):
    def __init__(self, prob=0.5):
        self.prob = prob

    def __call__(self, image, target=None):
        if random.random() < self.prob:
            image = F.hflip(image)
            if target is not None:
                target = target.transpose(FLIP_LEFT_RIGHT)
        return image, target


class RandomVerticalFlip(object):
    def __init__(self, prob=0.5):
        self.prob = prob

    def __call__(self, image, target=None):
        if random.random() < self.prob:
            image = F.vflip(image)
            if target is not None:
                target = target.transpose(FLIP_TOP_BOTTOM)
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
