"""RoI feature pooling over one or several (FPN) feature levels."""
import math

import torch
from torch import nn

from maskrcnn_benchmark.layers import ROIAlign


class LevelMapper(object):
    """Chooses the FPN level of each box (FPN paper, eq. 1):
    ``k = floor(canonical_level + log2(sqrt(area) / canonical_scale))`` clamped to
    ``[k_min, k_max]``, returned as an index from 0 (level ``k_min``)."""

    def __init__(self, k_min, k_max, canonical_scale=224, canonical_level=4, eps=1e-6):
        self.k_min = k_min
        self.k_max = k_max
        self.s0 = canonical_scale
        self.lvl0 = canonical_level
        self.eps = eps

    def __call__(self, boxlists):
        scale = torch.sqrt(torch.cat([boxlist.area() for boxlist in boxlists]))
        target_level = torch.floor(self.lvl0 + torch.log2(scale / self.s0 + self.eps))
        target_level = target_level.clamp(min=self.k_min, max=self.k_max)
        return target_level.to(torch.int64) - self.k_min


class Pooler(nn.Module):
    """ROIAlign of each box on its level (``scales`` = 1 / stride per level)."""

    def __init__(self, output_size, scales, sampling_ratio):
        super(Pooler, self).__init__()
        self.output_size = output_size
        self.poolers = nn.ModuleList(
            ROIAlign(output_size, spatial_scale=scale, sampling_ratio=sampling_ratio) for scale in scales
        )
        # The levels follow from the strides: scale 1/4 is level 2, 1/32 is level 5.
        k_min = -math.log2(scales[0])
        k_max = -math.log2(scales[-1])
        self.map_levels = LevelMapper(int(round(k_min)), int(round(k_max)))

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
        num_channels = x[0].shape[1]
        height, width = _pair(self.output_size)
        # The loop below writes the row of every box that maps to a pooled level (the mapper
        # clamps), so only boxes without one (NaN size from inverted corners, or a level with no
        # feature map) need their zero row filled.
        result = x[0].new_empty((rois.shape[0], num_channels, height, width))
        unmapped = (levels < 0) | (levels >= min(len(x), len(self.poolers)))
        if unmapped.any():
            result[unmapped] = 0
        for level, (feature, pooler) in enumerate(zip(x, self.poolers)):
            idx_in_level = torch.nonzero(levels == level).squeeze(1)
            if idx_in_level.numel() == 0:
                continue
            result[idx_in_level] = pooler(feature, rois[idx_in_level].to(feature.dtype)).to(result.dtype)
        return result


def _pair(size):
    return tuple(size) if isinstance(size, (tuple, list)) else (size, size)


def make_pooler(cfg, head_name):
    head = cfg.MODEL[head_name]
    return Pooler(
        output_size=(head.POOLER_RESOLUTION, head.POOLER_RESOLUTION),
        scales=head.POOLER_SCALES,
        sampling_ratio=head.POOLER_SAMPLING_RATIO,
    )
