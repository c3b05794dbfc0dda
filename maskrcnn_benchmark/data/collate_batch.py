"""Turns a list of dataset samples into one batch."""
from maskrcnn_benchmark.structures.image_list import to_image_list


class BatchCollator(object):
    """``[(image, target, index), ...]`` -> ``(ImageList, targets tuple, indices tuple)``; images
    are zero-padded to a common size, rounded up to a multiple of ``size_divisible``. Samples
    without an image (corrupt images dropped from an evaluation) are left out; a batch of only
    such samples gives ``(None, (), ())``."""

    def __init__(self, size_divisible=0):
        self.size_divisible = size_divisible

    def __call__(self, batch):
        # an evaluation sample whose image was corrupt comes as (None, None, index) and is left out
        batch = [sample for sample in batch if sample[0] is not None]
        if not batch:
            return None, (), ()
        images, targets, indices = zip(*batch)
        return to_image_list(images, self.size_divisible), targets, indices
