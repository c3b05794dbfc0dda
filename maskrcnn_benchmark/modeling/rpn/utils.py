"""Reshaping helpers shared by the RPN and the one-stage heads."""
import torch


def permute_and_flatten(layer, N, A, C, H, W):
    """``N x (A*C) x H x W`` -> ``N x (H*W*A) x C``, the order in which anchors are generated."""
    layer = layer.view(N, A, C, H, W).permute(0, 3, 4, 1, 2)
    return layer.reshape(N, -1, C)


def concat_box_prediction_layers(box_cls, box_regression):
    """Flatten per-level predictions and join the levels: returns ``(N*R) x C`` scores and
    ``(N*R) x 4`` regressions, image-major, in the anchor order of every level."""
    flat_cls, flat_regression = [], []
    for cls_level, regression_level in zip(box_cls, box_regression):
        N, AxC, H, W = cls_level.shape
        A = regression_level.shape[1] // 4
        C = AxC // A
        flat_cls.append(permute_and_flatten(cls_level, N, A, C, H, W))
        flat_regression.append(permute_and_flatten(regression_level, N, A, 4, H, W))
    box_cls = torch.cat(flat_cls, dim=1).reshape(-1, flat_cls[0].shape[-1])
    box_regression = torch.cat(flat_regression, dim=1).reshape(-1, 4)
    return box_cls, box_regression
