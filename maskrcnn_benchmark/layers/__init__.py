"""Building blocks: compiled RoI/NMS/focal-loss operators and small layers.

Deformable convolution (maskrcnn-benchmark's ``dcn``) is out of scope for this project.
"""
from ._ops import compiled_with_cuda
from .batch_norm import FrozenBatchNorm2d
from .misc import BatchNorm2d, Conv2d, ConvTranspose2d, interpolate
from .nms import batched_nms, nms
from .roi_align import ROIAlign, roi_align
from .roi_pool import ROIPool, roi_pool
from .sigmoid_focal_loss import SigmoidFocalLoss, sigmoid_focal_loss, sigmoid_focal_loss_cpu
from .smooth_l1_loss import smooth_l1_loss

__all__ = [
    "BatchNorm2d",
    "Conv2d",
    "ConvTranspose2d",
    "FrozenBatchNorm2d",
    "ROIAlign",
    "ROIPool",
    "SigmoidFocalLoss",
    "batched_nms",
    "compiled_with_cuda",
    "interpolate",
    "nms",
    "roi_align",
    "roi_pool",
    "sigmoid_focal_loss",
    "sigmoid_focal_loss_cpu",
    "smooth_l1_loss",
]
