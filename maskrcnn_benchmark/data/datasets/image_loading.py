"""The one image reader of the project: a file on disk -> a PIL RGB image in the frame a person
sees, with errors that name the file.

Every dataset, the demo and the tools read images through ``read_image``.

* Frame: the EXIF ``Orientation`` tag is applied (as image viewers, annotation tools and
  detectron2 do), so pixel (x, y) of the result is where a person looking at the photo sees it.
  Annotations (COCO json, VOC xml) are taken to be in that displayed frame; the dataset checks the
  sizes they state against it (``check_image_size``).
* Colour: the result is always 8-bit RGB. Alpha is dropped (the colour channels are kept as
  stored); grayscale is replicated on the three channels; palettes are looked up; CMYK uses
  PIL's conversion ``R = (255 - C)(255 - K) / 255``. Intensities of more than 8 bits are
  scaled, not clipped: 16-bit modes (``I;16*``) and 32-bit integers (``I``, which PIL also uses
  for 16-bit files) are read on the 0-65535 scale and divided by 257; 32-bit floats (``F``) are
  read on the 0-255 scale of ``L`` (PIL's own convention). Values outside the scale are clipped.
"""
import logging
import os

import numpy as np
from PIL import Image, ImageOps

logger = logging.getLogger(__name__)

# modes whose pixels are integers on the 16-bit scale 0..65535
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_FLOAT_MODES = ("F",)


class CorruptImageError(OSError):
    """An image file exists but cannot be decoded (truncated, not an image, ...)."""


class ImageSizeMismatchError(ValueError):
    """The decoded image does not have the size its annotation states."""


def _gray_to_rgb(gray):
    return Image.fromarray(np.repeat(gray[:, :, None], 3, axis=2), mode="RGB")


def to_rgb(image):
    """``image`` (any PIL mode) as an 8-bit RGB image; see the module docstring for the scales."""
    if image.mode == "RGB":
        return image
    if image.mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(image).astype(np.float64)
        return _gray_to_rgb(np.rint(np.clip(values, 0, 65535) / 257.0).astype(np.uint8))
    if image.mode in _FLOAT_MODES:
        values = np.nan_to_num(np.asarray(image).astype(np.float64), nan=0.0)
        return _gray_to_rgb(np.rint(np.clip(values, 0, 255)).astype(np.uint8))
    if image.mode in ("PA", "La", "RGBa"):
        image = image.convert("RGBA")  # PIL converts these to RGB only through RGBA
    return image.convert("RGB")


def _apply_exif_orientation(image, path):
    try:
        return ImageOps.exif_transpose(image)
    except Exception as err:  # a broken EXIF block must not lose the image: keep the stored frame
        logger.warning("cannot read the EXIF orientation of %s (%s); using the stored frame", path, err)
        return image


def read_image(path):
    """Decode ``path`` fully and return it as a PIL RGB image in the displayed (EXIF-rotated)
    frame. Raises FileNotFoundError / IsADirectoryError for a wrong path and CorruptImageError
    for a file that cannot be decoded (truncated, not an image, too large), each naming ``path``."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError("image path {} is a directory, not an image file".format(path))
    try:
        with Image.open(path) as image:
            image.load()  # decode now, so a truncated file fails here and not in a transform
            image = _apply_exif_orientation(image, path)
            return to_rgb(image)
    except FileNotFoundError:
        raise FileNotFoundError("image file not found: {}".format(path)) from None
    except Image.DecompressionBombError as err:
        raise CorruptImageError("image {} is larger than PIL allows ({}); raise PIL.Image.MAX_IMAGE_PIXELS "
                                "to read it".format(path, err)) from err
    except (OSError, SyntaxError, ValueError) as err:
        raise CorruptImageError("cannot decode image {}: {}".format(path, err)) from err


# maskrcnn-benchmark-era name, kept for callers
load_rgb_image = read_image


def check_image_size(image, expected_size, path, source):
    """Raise ImageSizeMismatchError when ``image`` (PIL, displayed frame) is not
    ``expected_size = (width, height)``, the size ``source`` (the annotation file) states for it:
    ground truth built in one frame and predictions scored in another would silently give AP 0."""
    width, height = (int(v) for v in expected_size)
    if image.size == (width, height):
        return
    hint = ""
    if image.size == (height, width):
        hint = (" (the sizes are swapped: the file has an EXIF orientation tag and the annotations were "
                "made on the stored, un-rotated frame; remove the tag or re-annotate)")
    raise ImageSizeMismatchError(
        "image {}: {} says it is {}x{} (width x height) but the decoded file is {}x{} (EXIF orientation "
        "applied){}".format(path, source, width, height, image.size[0], image.size[1], hint))


def get_with_corrupt_fallback(dataset, index, load_sample):
    """``load_sample(index)``, with ``dataset.corrupt_image_policy`` deciding what an undecodable
    image does: ``"error"`` (the default) raises CorruptImageError naming the file; ``"substitute"``
    (training with DATALOADER.SKIP_CORRUPT_IMAGES) warns and returns the next readable sample, with
    that sample's own index; ``"drop"`` (evaluation with DATALOADER.SKIP_CORRUPT_IMAGES) warns and
    returns ``(None, None, index)``: the collator leaves it out of the batch and the evaluation
    leaves the image out of the scored set, so no other image is ever scored in its place."""
    policy = corrupt_image_policy(dataset)
    if policy == "error":
        return load_sample(index)
    if policy == "drop":
        try:
            return load_sample(index)
        except CorruptImageError as err:
            logger.warning("leaving a corrupt image out of the evaluation (DATALOADER.SKIP_CORRUPT_IMAGES): %s", err)
            return None, None, index
    for offset in range(len(dataset)):
        candidate = (index + offset) % len(dataset)
        try:
            return load_sample(candidate)
        except CorruptImageError as err:
            logger.warning("substituting the next image for a corrupt one (DATALOADER.SKIP_CORRUPT_IMAGES): %s", err)
    raise CorruptImageError("every image of the dataset is unreadable")


CORRUPT_IMAGE_POLICIES = ("error", "substitute", "drop")


def corrupt_image_policy(dataset):
    """The dataset's policy; the older boolean ``skip_corrupt_images = True`` means "substitute"."""
    policy = getattr(dataset, "corrupt_image_policy", None)
    if policy is None:
        policy = "substitute" if getattr(dataset, "skip_corrupt_images", False) else "error"
    if policy not in CORRUPT_IMAGE_POLICIES:
        raise ValueError("corrupt_image_policy must be one of {}, got {!r}".format(CORRUPT_IMAGE_POLICIES, policy))
    return policy
