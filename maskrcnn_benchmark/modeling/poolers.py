"""RoI feature pooling over one or several (FPN) feature levels."""
import math

import torch
from torch import nn

from torch.autograd.function import once_differentiable

from maskrcnn_benchmark.layers import ROIAlign
from maskrcnn_benchmark.layers.roi_align import roi_align_backward, roi_align_into
from maskrcnn_benchmark.structures.box_convention import (
    DEFAULT_BOX_CONVENTION,
    box_convention,
    box_convention_from_config,
)


class LevelMapper(object):
    """Chooses the FPN level of each box (FPN paper, eq. 1):
    ``k = floor(canonical_level + log2(sqrt(area) / canonical_scale))`` clamped to
    ``[k_min, k_max]``, returned as an index from 0 (level ``k_min``). The area is the box
    ``convention``'s (with maskrcnn-benchmark's +1 widths, while RoIAlign samples the corners as
    they are)."""

    def __init__(self, k_min, k_max, canonical_scale=224, canonical_level=4, eps=1e-6,
                 convention=DEFAULT_BOX_CONVENTION):
        self.k_min = k_min
        self.k_max = k_max
        self.s0 = canonical_scale
        self.lvl0 = canonical_level
        self.eps = eps
        self.convention = box_convention(convention)

    def __call__(self, boxlists):
        scale = torch.sqrt(torch.cat([boxlist.area(self.convention) for boxlist in boxlists]))
        target_level = torch.floor(self.lvl0 + torch.log2(scale / self.s0 + self.eps))
        target_level = target_level.clamp(min=self.k_min, max=self.k_max)
        return target_level.to(torch.int64) - self.k_min


class Pooler(nn.Module):
    """ROIAlign of each box on its level (``scales`` = 1 / stride per level; the level from the
    box area in ``convention``)."""

    def __init__(self, output_size, scales, sampling_ratio, convention=DEFAULT_BOX_CONVENTION):
        super(Pooler, self).__init__()
        self.output_size = output_size
        self.poolers = nn.ModuleList(
            ROIAlign(output_size, spatial_scale=scale, sampling_ratio=sampling_ratio) for scale in scales
        )
        # The levels follow from the strides: scale 1/4 is level 2, 1/32 is level 5.
        k_min = -math.log2(scales[0])
        k_max = -math.log2(scales[-1])
        self.map_levels = LevelMapper(int(round(k_min)), int(round(k_max)), convention=convention)

    def convert_to_roi_format(self, boxes):
        """Per-image BoxLists -> ``K x 5`` rows of (image index, x1, y1, x2, y2)."""
        concat_boxes = torch.cat([b.bbox for b in boxes], dim=0)
        image_ids = torch.cat(
            [
                torch.full((len(b), 1), i, dtype=concat_boxes.dtype, device=concat_boxes.device)
                for i, b in enumerate(boxes)
            ],
            dim=0,
        )
        return torch.cat([image_ids, concat_boxes], dim=1)

    def forward(self, x, boxes):
        """``x``: feature maps, one per level; ``boxes``: per image BoxLists. Returns
        ``K x C x output_size``, rows in the order of the boxes."""
        rois = self.convert_to_roi_format(boxes)
        if len(self.poolers) == 1:
            return self.poolers[0](x[0], rois.to(x[0].dtype))

        levels = self.map_levels(boxes)
        num_levels = min(len(x), len(self.poolers))
        rows_per_level = tuple(torch.nonzero(levels == level).squeeze(1) for level in range(num_levels))
        # Boxes without a level (NaN size from inverted corners) get a zero row.
        unmapped = torch.nonzero((levels < 0) | (levels >= num_levels)).squeeze(1)
        first = self.poolers[0]
        pool_args = (first.output_size, first.sampling_ratio, first.aligned)
        scales = tuple(pooler.spatial_scale for pooler in self.poolers[:num_levels])
        return _PoolOnAssignedLevels.apply(rois, rows_per_level, unmapped, scales, pool_args, *x[:num_levels])


class _PoolOnAssignedLevels(torch.autograd.Function):
    """RoIAlign of every RoI on its assigned level, written into one ``K x C x h x w`` output.

    Written as ``result[rows] = roi_align(level)`` under autograd, each level's pooled rows would
    exist twice in the forward (its own output, then the copy in ``result``) and the backward of
    each index assignment would clone the whole output gradient, one full K x C x h x w copy per
    level: most of the RoI head's memory once thousands of RoIs are trained, as Sampling-Free
    does. Here each level's RoIAlign writes its rows of ``result`` and reads its rows of the
    output gradient in place (on CUDA the ops gather and scatter the rows)."""

    @staticmethod
    def forward(ctx, rois, rows_per_level, unmapped, scales, pool_args, *features):
        output_size, sampling_ratio, aligned = pool_args
        result = features[0].new_empty((rois.shape[0], features[0].shape[1]) + tuple(output_size))
        # Every row but the unmapped ones is overwritten below.
        if unmapped.numel():
            result.index_fill_(0, unmapped, 0)
        for rows, feature, scale in zip(rows_per_level, features, scales):
            if rows.numel():
                roi_align_into(result, feature, rois, rows, output_size, scale, sampling_ratio, aligned)
        ctx.save_for_backward(rois, *rows_per_level)
        ctx.scales = scales
        ctx.pool_args = pool_args
        ctx.feature_meta = [(tuple(f.shape), f.dtype) for f in features]
        return result

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        rois, *rows_per_level = ctx.saved_tensors
        output_size, sampling_ratio, aligned = ctx.pool_args
        grad_output = grad_output.contiguous()
        in_dtype = {}  # the output gradient converted once per compute dtype
        grads = []
        for level, (rows, scale, (shape, dtype)) in enumerate(zip(rows_per_level, ctx.scales, ctx.feature_meta)):
            if rows.numel() == 0 or not ctx.needs_input_grad[5 + level]:
                grads.append(None)  # autograd reads None as a zero gradient
                continue
            # Same dtype rule as roi_align's forward: mixed dtypes go through float32.
            compute_dtype = dtype if dtype == rois.dtype else torch.float32
            if compute_dtype not in in_dtype:
                in_dtype[compute_dtype] = (grad_output.to(compute_dtype), rois.to(compute_dtype))
            level_grad_output, level_rois = in_dtype[compute_dtype]
            grad = roi_align_backward(level_grad_output, level_rois, scale, output_size, sampling_ratio,
                                      aligned, shape, rows=rows)
            grads.append(grad.to(dtype))
        return (None, None, None, None, None, *grads)


def _pair(size):
    return tuple(size) if isinstance(size, (tuple, list)) else (size, size)


def make_pooler(cfg, head_name):
    head = cfg.MODEL[head_name]
    return Pooler(
        output_size=(head.POOLER_RESOLUTION, head.POOLER_RESOLUTION),
        scales=head.POOLER_SCALES,
        sampling_ratio=head.POOLER_SAMPLING_RATIO,
        convention=box_convention_from_config(cfg),
    )
