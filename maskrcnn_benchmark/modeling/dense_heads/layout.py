"""Per-level prediction maps -> one row per position, in the order positions are generated.

A level's map is ``N x (A * K) x H x W`` (A positions per location: anchors, or A = 1 for point
heads; K values each). Flattened it is ``N x (H * W * A) x K``: location-major (row, then column),
then anchor, the order of ``AnchorGenerator.grid_anchors`` and of the points' grid.
"""
import torch


def flatten_level(level, channels):
    """``N x (A * channels) x H x W`` -> ``N x (H * W * A) x channels``."""
    n, a_times_c, h, w = level.shape
    return level.reshape(n, a_times_c // channels, channels, h, w).permute(0, 3, 4, 1, 2).reshape(n, -1, channels)


def flatten_levels(per_level, channels):
    """Every level flattened and joined: ``N x R x channels``, R = positions of all levels."""
    return torch.cat([flatten_level(level, channels) for level in per_level], dim=1)
