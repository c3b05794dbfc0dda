"""Argument handling shared by the RoI pooling layers."""
import torch


def pair(op, name, value):
    """An int or a 2-sequence of positive ints, as (height, width)."""
    if isinstance(value, int):
        value = (value, value)
    value = tuple(value)
    if len(value) != 2 or not all(isinstance(v, int) and v > 0 for v in value):
        raise ValueError(f"{op}: {name} must be a positive int or a pair of them, got {value!r}")
    return value


def check_rois(op, input, rois):
    if not isinstance(rois, torch.Tensor):
        raise TypeError(f"{op}: rois must be a K x 5 tensor (batch index, x1, y1, x2, y2), "
                        f"got {type(rois).__name__}")
    if input.dim() != 4:
        raise ValueError(f"{op}: input must be N x C x H x W, got shape {tuple(input.shape)}")
    if rois.dim() != 2 or rois.shape[1] != 5:
        raise ValueError(f"{op}: rois must be K x 5 (batch index, x1, y1, x2, y2), "
                         f"got shape {tuple(rois.shape)}")


def run_in_common_dtype(pool, input, rois):
    """Runs ``pool(input, rois)``; when their dtypes differ (e.g. half features under autocast
    and float boxes) both go through float32, so box coordinates keep their precision, and the
    result comes back in the dtype of ``input``."""
    if input.dtype == rois.dtype:
        return pool(input, rois)
    return pool(input.float(), rois.float()).to(input.dtype)
