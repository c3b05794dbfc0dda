"""RoIPool (Girshick, Fast R-CNN): max pooling of RoIs over a fixed grid of bins."""
from torch import nn

from ._ops import ops
from ._roi_args import check_rois, pair, run_in_common_dtype


def roi_pool(input, rois, output_size, spatial_scale):
    """Max-pools every RoI of ``rois`` (K x 5: batch index, x1, y1, x2, y2) from ``input``
    (N x C x H x W) into a K x C x output_size tensor; empty bins give 0."""
    check_rois("roi_pool", input, rois)
    pooled_height, pooled_width = pair("roi_pool", "output_size", output_size)

    def pool(features, boxes):
        output, _ = ops.roi_pool_forward(features, boxes, float(spatial_scale), pooled_height,
                                         pooled_width)
        return output

    return run_in_common_dtype(pool, input, rois)


class ROIPool(nn.Module):
    def __init__(self, output_size, spatial_scale):
        super().__init__()
        self.output_size = pair("ROIPool", "output_size", output_size)
        self.spatial_scale = spatial_scale

    def forward(self, input, rois):
        return roi_pool(input, rois, self.output_size, self.spatial_scale)

    def extra_repr(self):
        return f"output_size={self.output_size}, spatial_scale={self.spatial_scale}"
