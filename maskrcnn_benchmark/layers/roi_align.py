"""RoIAlign (He et al., Mask R-CNN): bilinear pooling of RoIs to a fixed grid."""
import torch
from torch import nn

from ._ops import ops
from ._roi_args import check_rois, pair, run_in_common_dtype


def roi_align(input, rois, output_size, spatial_scale, sampling_ratio, aligned=False):
    """Pools every RoI of ``rois`` (K x 5: batch index, x1, y1, x2, y2 in image coordinates)
    from ``input`` (N x C x H x W) into a K x C x output_size tensor.

    ``spatial_scale`` maps image coordinates to feature-map cells (1 / stride);
    ``sampling_ratio`` is the number of bilinear samples per bin side (0: adaptive,
    ceil(RoI size / output size)); ``aligned=True`` shifts the RoI by half a pixel so that
    pixel centres are at integer + 0.5 (Detectron2's convention).
    """
    check_rois("roi_align", input, rois)
    pooled_height, pooled_width = pair("roi_align", "output_size", output_size)
    if sampling_ratio < 0:
        raise ValueError(f"roi_align: sampling_ratio must be >= 0, got {sampling_ratio}")

    def pool(features, boxes):
        return ops.roi_align_forward(features, boxes, float(spatial_scale), pooled_height,
                                     pooled_width, int(sampling_ratio), bool(aligned))

    return run_in_common_dtype(pool, input, rois)


def roi_align_into(output, input, rois, rows, output_size, spatial_scale, sampling_ratio, aligned=False):
    """Pools ``rois[rows]`` from ``input`` into ``output[rows]`` (``output``: K x C x output_size,
    the other rows untouched), outside autograd. The CPU kernel writes the rows in place, with
    no intermediate K' x C x output_size buffer; mixed dtypes go through :func:`roi_align`."""
    pooled_height, pooled_width = pair("roi_align_into", "output_size", output_size)
    if input.dtype == rois.dtype == output.dtype and output.is_contiguous():
        ops.roi_align_forward_into(input, rois, rows, output, float(spatial_scale), pooled_height,
                                   pooled_width, int(sampling_ratio), bool(aligned))
    else:
        pooled = roi_align(input, rois[rows], output_size, spatial_scale, sampling_ratio, aligned)
        output.index_copy_(0, rows, pooled.to(output.dtype))
    return output


def roi_align_backward(grad_output, rois, spatial_scale, output_size, sampling_ratio, aligned,
                       input_shape, rows=None):
    """Gradient of :func:`roi_align` with respect to its ``input`` (of ``input_shape``), for
    callers that run the forward outside autograd. ``grad_output`` (K x C x output_size) and
    ``rois`` (K x 5) share a dtype. ``rows`` (int64 indices into the K RoIs) restricts the
    gradient to those RoIs; the CPU kernel reads them in place, without gathering a copy."""
    pooled_height, pooled_width = pair("roi_align_backward", "output_size", output_size)
    batch_size, channels, height, width = input_shape
    return ops.roi_align_backward(grad_output.contiguous(), rois, float(spatial_scale), pooled_height,
                                  pooled_width, batch_size, channels, height, width,
                                  int(sampling_ratio), bool(aligned), rows)


class ROIAlign(nn.Module):
    def __init__(self, output_size, spatial_scale, sampling_ratio, aligned=False):
        super().__init__()
        self.output_size = pair("ROIAlign", "output_size", output_size)
        self.spatial_scale = spatial_scale
        self.sampling_ratio = sampling_ratio
        self.aligned = aligned

    def forward(self, input, rois):
        return roi_align(input, rois, self.output_size, self.spatial_scale, self.sampling_ratio,
                         self.aligned)

    def extra_repr(self):
        return (f"output_size={self.output_size}, spatial_scale={self.spatial_scale}, "
                f"sampling_ratio={self.sampling_ratio}, aligned={self.aligned}")
