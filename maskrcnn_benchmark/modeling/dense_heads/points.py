"""The points of anchor-free heads (FCOS): the image-plane centre of every feature-map cell.

``PointGenerator`` is the anchor-free counterpart of ``AnchorGenerator``: both have ``strides`` and
``grid_positions(grid_sizes)``, so ``anchor_generator.positions_for_image_size`` serves both.
"""
import torch


def locations_for_level(height, width, stride, device=None):
    """``[height * width, 2]`` (x, y) points of one level, row-major like a flattened feature map.

    Cell (i, j) of a stride-s map covers pixels [j*s, (j+1)*s) x [i*s, (i+1)*s); its point is
    (j*s + s//2, i*s + s//2), as in FCOS.
    """
    xs = torch.arange(width, dtype=torch.float32, device=device) * stride + stride // 2
    ys = torch.arange(height, dtype=torch.float32, device=device) * stride + stride // 2
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((grid_x.reshape(-1), grid_y.reshape(-1)), dim=1)


def locations_for_sizes(feature_sizes, strides, device=None):
    """One ``[H*W, 2]`` tensor per level, for feature maps of the given (height, width)."""
    return [locations_for_level(h, w, s, device) for (h, w), s in zip(feature_sizes, strides)]


class PointGenerator:
    """One point per feature-map cell on each level of ``strides``."""

    def __init__(self, strides):
        self.strides = tuple(strides)

    def grid_positions(self, grid_sizes, device=None):
        return locations_for_sizes(grid_sizes, self.strides, device)

    def __call__(self, features):
        """The points of the maps ``features`` (per level ``N x C x H x W``)."""
        return self.grid_positions([tuple(f.shape[-2:]) for f in features], features[0].device)


def boxes_from_points(distances, points):
    """(l, t, r, b) distances ``[K, 4]`` from points ``[K, 2]`` -> boxes (x1, y1, x2, y2): the decode
    of point heads."""
    return torch.cat((points - distances[:, :2], points + distances[:, 2:]), dim=1)
