"""Reshaping helpers of maskrcnn-benchmark's RPN surface, on top of the dense-head kit's layout."""
from maskrcnn_benchmark.modeling.dense_heads.layout import flatten_level, flatten_levels


def permute_and_flatten(layer, N, A, C, H, W):
    """``N x (A*C) x H x W`` -> ``N x (H*W*A) x C``, the order in which anchors are generated."""
    return flatten_level(layer, C)


def concat_box_prediction_layers(box_cls, box_regression):
    """Flatten per-level predictions and join the levels: returns ``(N*R) x C`` scores and
    ``(N*R) x 4`` regressions, image-major, in the anchor order of every level."""
    num_anchors = box_regression[0].shape[1] // 4
    num_classes = box_cls[0].shape[1] // num_anchors
    box_cls = flatten_levels(box_cls, num_classes).reshape(-1, num_classes)
    return box_cls, flatten_levels(box_regression, 4).reshape(-1, 4)
