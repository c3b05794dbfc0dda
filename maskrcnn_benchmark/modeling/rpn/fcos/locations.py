"""FCOS sample points: the image-plane centre of every feature-map cell."""
import torch


def locations_for_level(height, width, stride, device=None):
    """[height * width, 2] (x, y) points of one level, row-major like a flattened feature map.

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
