"""ImageList: images of different sizes padded into one batch tensor, with their true sizes."""
import math

import torch


class ImageList(object):
    """A zero-padded batch ``tensors`` (``N x C x H x W``) and ``image_sizes``, the ``(height,
    width)`` of each image before padding (note: height first, unlike BoxList.size)."""

    def __init__(self, tensors, image_sizes):
        self.tensors = tensors
        self.image_sizes = image_sizes

    def to(self, *args, **kwargs):
        return ImageList(self.tensors.to(*args, **kwargs), self.image_sizes)


def _round_up(value, divisor):
    if divisor <= 0:
        return value
    return int(math.ceil(value / divisor) * divisor)


def to_image_list(tensors, size_divisible=0):
    """Batch images into an ImageList.

    ``tensors`` is an ImageList (returned as is), a ``C x H x W`` or ``N x C x H x W`` tensor, or
    a list/tuple of ``C x H x W`` tensors. Images are zero-padded at the bottom and right to the
    largest height and width, each rounded up to a multiple of ``size_divisible`` when that is
    positive (FPN needs sizes divisible by its coarsest stride).
    """
    if isinstance(tensors, ImageList):
        return tensors
    if isinstance(tensors, torch.Tensor):
        if tensors.dim() == 3:
            tensors = tensors[None]
        if tensors.dim() != 4:
            raise ValueError(f"to_image_list: a tensor must be CxHxW or NxCxHxW, got shape {tuple(tensors.shape)}")
        if size_divisible <= 0:
            return ImageList(tensors, [tuple(tensors.shape[-2:])] * tensors.shape[0])
        tensors = list(tensors.unbind(0))
    if not isinstance(tensors, (list, tuple)):
        raise TypeError(f"to_image_list: expected a tensor, an ImageList or a list of tensors, got {type(tensors).__name__}")
    if len(tensors) == 0:
        raise ValueError("to_image_list: got an empty list of images")
    for index, image in enumerate(tensors):
        if not isinstance(image, torch.Tensor) or image.dim() != 3:
            shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
            raise ValueError(f"to_image_list: image {index} must be a CxHxW tensor, got {shape}")
        if image.shape[0] != tensors[0].shape[0]:
            raise ValueError(
                f"to_image_list: image {index} has {image.shape[0]} channels, image 0 has {tensors[0].shape[0]}"
            )

    channels = tensors[0].shape[0]
    max_height = _round_up(max(image.shape[1] for image in tensors), size_divisible)
    max_width = _round_up(max(image.shape[2] for image in tensors), size_divisible)
    batched = tensors[0].new_zeros((len(tensors), channels, max_height, max_width))
    for index, image in enumerate(tensors):
        # indexing (not iterating) gives a plain view, so the copy stays differentiable
        batched[index, :, : image.shape[1], : image.shape[2]].copy_(image)
    image_sizes = [tuple(image.shape[-2:]) for image in tensors]
    return ImageList(batched, image_sizes)
