"""Reading images from disk as RGB, with errors that name the file."""
import logging

from PIL import Image

logger = logging.getLogger(__name__)


class CorruptImageError(OSError):
    """An image file exists but cannot be decoded (truncated, not an image, ...)."""


def load_rgb_image(path):
    """Open ``path`` fully and return a PIL RGB image (grayscale, RGBA and palette are converted)."""
    try:
        with Image.open(path) as image:
            image.load()  # decode now, so a truncated file fails here and not in a transform
            return image.convert("RGB")
    except FileNotFoundError:
        raise FileNotFoundError("image file not found: {}".format(path)) from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise CorruptImageError("cannot decode image {}: {}".format(path, err)) from err


def get_with_corrupt_fallback(dataset, index, load_sample):
    """Call ``load_sample(index)``; if the image is corrupt and ``dataset.skip_corrupt_images`` is
    set, warn and return the next readable sample instead (its own index is returned with it)."""
    if not getattr(dataset, "skip_corrupt_images", False):
        return load_sample(index)
    for offset in range(len(dataset)):
        candidate = (index + offset) % len(dataset)
        try:
            return load_sample(candidate)
        except CorruptImageError as err:
            logger.warning("skipping corrupt image (DATALOADER.SKIP_CORRUPT_IMAGES=True): %s", err)
    raise CorruptImageError("every image of the dataset is unreadable")
