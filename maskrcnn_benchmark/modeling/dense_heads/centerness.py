"""Centre-ness targets (FCOS, also ATSS's quality branch): how central a point is in its box."""
import torch


def distances_to_box_sides(points, boxes):
    """(l, t, r, b) = (x - x1, y - y1, x2 - x, y2 - y); ``points [..., 2]`` and ``boxes [..., 4]``
    broadcast against each other (aligned pairs, or ``points[:, None]`` x ``boxes[None]``)."""
    x, y = points[..., 0], points[..., 1]
    return torch.stack((x - boxes[..., 0], y - boxes[..., 1], boxes[..., 2] - x, boxes[..., 3] - y), dim=-1)


def centerness_targets(ltrb):
    """sqrt(min(l, r) / max(l, r) * min(t, b) / max(t, b)) in [0, 1] for distances ``[K, 4]``; a
    point outside its box (a negative distance) gets 0."""
    left_right = ltrb[:, [0, 2]]
    top_bottom = ltrb[:, [1, 3]]
    horizontal = left_right.min(dim=1).values.clamp(min=0) / left_right.max(dim=1).values.clamp(min=1e-6)
    vertical = top_bottom.min(dim=1).values.clamp(min=0) / top_bottom.max(dim=1).values.clamp(min=1e-6)
    return torch.sqrt(horizontal * vertical)
