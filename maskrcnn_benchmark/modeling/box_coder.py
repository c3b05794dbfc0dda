"""Box regression targets: (dx, dy, dw, dh) of a box relative to a reference box."""
import math

import torch

from maskrcnn_benchmark.structures.box_convention import DEFAULT_BOX_CONVENTION, box_convention


class BoxCoder(object):
    """Encodes boxes as weighted centre offsets and log size ratios against reference boxes, and back.

    Boxes are ``x1, y1, x2, y2`` in ``convention``: with inclusive pixel corners (maskrcnn-benchmark)
    a box is ``x2 - x1 + 1`` wide and its centre ``x1 + w / 2``, and a decoded box ends at
    ``centre + w / 2 - 1``; in continuous coordinates the width is ``x2 - x1`` and the box is
    symmetric about its centre. ``bbox_xform_clip`` caps the predicted log size ratio before ``exp``
    so that a wild prediction cannot overflow.
    """

    def __init__(self, weights, bbox_xform_clip=math.log(1000.0 / 16), convention=DEFAULT_BOX_CONVENTION):
        if len(weights) != 4:
            raise ValueError("BoxCoder: weights must have 4 entries, got {!r}".format(weights))
        self.weights = tuple(float(w) for w in weights)
        self.bbox_xform_clip = bbox_xform_clip
        self.convention = box_convention(convention)

    def encode(self, reference_boxes, proposals):
        """Targets that turn ``proposals`` into ``reference_boxes`` (both ``N x 4``)."""
        wx, wy, ww, wh = self.weights
        proposal_w = self.convention.widths(proposals)
        proposal_h = self.convention.heights(proposals)
        proposal_cx = proposals[:, 0] + 0.5 * proposal_w
        proposal_cy = proposals[:, 1] + 0.5 * proposal_h

        target_w = self.convention.widths(reference_boxes)
        target_h = self.convention.heights(reference_boxes)
        target_cx = reference_boxes[:, 0] + 0.5 * target_w
        target_cy = reference_boxes[:, 1] + 0.5 * target_h

        dx = wx * (target_cx - proposal_cx) / proposal_w
        dy = wy * (target_cy - proposal_cy) / proposal_h
        dw = ww * torch.log(target_w / proposal_w)
        dh = wh * torch.log(target_h / proposal_h)
        return torch.stack((dx, dy, dw, dh), dim=1)

    def decode(self, rel_codes, boxes):
        """Apply ``rel_codes`` (``N x 4k``, k boxes per row, e.g. one per class) to ``boxes``."""
        boxes = boxes.to(rel_codes.dtype)
        wx, wy, ww, wh = self.weights
        widths = self.convention.widths(boxes)[:, None]
        heights = self.convention.heights(boxes)[:, None]
        ctr_x = boxes[:, 0:1] + 0.5 * widths
        ctr_y = boxes[:, 1:2] + 0.5 * heights

        dx = rel_codes[:, 0::4] / wx
        dy = rel_codes[:, 1::4] / wy
        dw = (rel_codes[:, 2::4] / ww).clamp(max=self.bbox_xform_clip)
        dh = (rel_codes[:, 3::4] / wh).clamp(max=self.bbox_xform_clip)

        pred_ctr_x = dx * widths + ctr_x
        pred_ctr_y = dy * heights + ctr_y
        pred_w = torch.exp(dw) * widths
        pred_h = torch.exp(dh) * heights

        # The far corner is the last pixel inside the box when corners are inclusive.
        offset = self.convention.pixel_offset
        x2 = pred_ctr_x + 0.5 * pred_w
        y2 = pred_ctr_y + 0.5 * pred_h
        pred = torch.stack(
            (
                pred_ctr_x - 0.5 * pred_w,
                pred_ctr_y - 0.5 * pred_h,
                x2 - offset if offset else x2,
                y2 - offset if offset else y2,
            ),
            dim=2,
        )
        return pred.reshape(rel_codes.shape)
