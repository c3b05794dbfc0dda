"""The box convention: what the four numbers of a box mean, and every rule that follows from it.

Detection code bases read ``(x1, y1, x2, y2)`` in one of two ways, and a model trained in one of
them gives other detections when run in the other (the anchors, the decoded boxes and the NMS
decisions all move by up to a pixel or more). ``MODEL.BOX_CONVENTION`` picks one for the whole
pipeline; ``box_convention_from_config`` turns it into a ``BoxConvention`` at the config boundary
and every part that depends on it (anchor generators, box coders, IoU, clipping, NMS, the FPN level
mapper, the mask paster, the resize transform, the evaluation) takes that object as an argument.

``maskrcnn_benchmark`` (the default): maskrcnn-benchmark, Detectron and the FCOS / ATSS / PAA code
bases built on it. Corners are indices of the first and last pixel a box covers, both inclusive, so
its width is ``x2 - x1 + 1`` (in areas, IoU, box encoding, the level mapper, NMS, size filters);
boxes are clipped to ``[0, W - 1] x [0, H - 1]``; a flipped box is ``x1' = W - 1 - x2``. Anchor
widths and heights are whole pixels at the stride (rounded before the scale is applied), centred
on pixel ``(stride - 1) / 2`` of the cell. The resized image side is truncated (640 x 480 ->
1066 x 800), masks are pasted at the truncated corners plus one pixel, and NMS suppresses a box
whose IoU with a kept one is at or above the threshold (maskrcnn-benchmark's CPU kernel, which our
CPU and CUDA kernels both follow, so a result does not depend on the device).

``maskrcnn_benchmark_cuda``: the same, except that NMS suppresses only above the threshold, as
maskrcnn-benchmark's CUDA kernel (with which its published numbers were computed) does. The two
differ only for a box whose IoU equals the threshold exactly.

``continuous`` (torchvision, detectron2): a box is the region ``[x1, x2) x [y1, y2)`` of the plane,
width ``x2 - x1``, clipped to ``[0, W] x [0, H]``, flipped as ``W - x2``; anchors have the exact
sizes and aspect ratios asked for, centred at ``stride / 2``; the resized side is rounded; masks
are pasted between the floor and the ceiling of the corners; NMS suppresses above the threshold.

Data sets and evaluation speak the continuous frame (a COCO ``[x, y, w, h]`` covers ``[x, x + w)``):
``from_continuous`` / ``to_continuous`` move boxes between it and the convention (the last pixel
is ``x + w - 1`` in maskrcnn-benchmark's), at exactly the places maskrcnn-benchmark does.
"""
import math
import struct
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class BoxConvention:
    """One convention; use the module's instances (``MASKRCNN_BENCHMARK``, ``CONTINUOUS``, ...).

    ``pixel_offset``: 1 when a box's corners are inclusive pixel indices (its width is
    ``x2 - x1 + 1``), 0 for continuous coordinates. ``round_anchor_shapes``: anchor widths and
    heights are rounded to whole pixels at the stride. ``truncate_resized_side``: the scaled side of
    a resized image is truncated (else rounded). ``nms_suppresses_ties``: NMS drops a box whose IoU
    equals the threshold. ``truncate_paste_corners``: masks are pasted between the truncated corners
    (both inclusive), else between their floor and ceiling.
    """

    name: str
    pixel_offset: int
    round_anchor_shapes: bool
    truncate_resized_side: bool
    nms_suppresses_ties: bool
    truncate_paste_corners: bool

    def __str__(self):
        return self.name

    # ---- lengths and areas ---------------------------------------------------------------------
    def length(self, low, high):
        """The extent from coordinate ``low`` to ``high`` (tensors), ``high - low`` plus the pixel
        offset."""
        return high - low + self.pixel_offset if self.pixel_offset else high - low

    def widths(self, boxes):
        """Widths of ``[..., 4]`` boxes (x1, y1, x2, y2)."""
        return self.length(boxes[..., 0], boxes[..., 2])

    def heights(self, boxes):
        return self.length(boxes[..., 1], boxes[..., 3])

    def areas(self, boxes):
        return self.widths(boxes) * self.heights(boxes)

    def nonempty(self, boxes):
        """Boxes with a positive width and height (a box of one pixel, ``x1 == x2``, is not empty
        when corners are inclusive)."""
        return (self.widths(boxes) > 0) & (self.heights(boxes) > 0)

    def pairwise_iou(self, boxes1, boxes2):
        """``N x M`` IoUs of ``N x 4`` and ``M x 4`` boxes. Pairs whose union is empty (two
        degenerate boxes) get 0, not NaN, so that maxima over the matrix stay defined."""
        area1, area2 = self.areas(boxes1), self.areas(boxes2)
        top_left = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])
        bottom_right = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])
        overlap = self.length(top_left, bottom_right).clamp(min=0)
        intersection = overlap[..., 0] * overlap[..., 1]
        union = area1[:, None] + area2[None, :] - intersection
        return torch.where(union > 0, intersection / union.clamp(min=torch.finfo(union.dtype).tiny), 0.0)

    # ---- positions in the image ----------------------------------------------------------------
    def clip(self, boxes, image_size):
        """``[..., 4]`` boxes clamped to an image of ``(width, height)`` (a new tensor)."""
        max_x = image_size[0] - self.pixel_offset
        max_y = image_size[1] - self.pixel_offset
        x1, y1, x2, y2 = boxes.unbind(dim=-1)
        return torch.stack(
            (x1.clamp(min=0, max=max_x), y1.clamp(min=0, max=max_y),
             x2.clamp(min=0, max=max_x), y2.clamp(min=0, max=max_y)),
            dim=-1,
        )

    def flip_coordinates(self, low, high, extent):
        """The new (low, high) corners along an axis of length ``extent`` after a mirror flip."""
        return extent - high - self.pixel_offset, extent - low - self.pixel_offset

    def from_continuous(self, boxes):
        """Continuous boxes (``[x1, x2)``, e.g. from an annotation) in this convention."""
        if not self.pixel_offset:
            return boxes
        return torch.cat((boxes[..., :2], boxes[..., 2:] - self.pixel_offset), dim=-1)

    def to_continuous(self, boxes):
        """This convention's boxes as continuous ones (the form COCO results and IoUs of
        annotations use)."""
        if not self.pixel_offset:
            return boxes
        return torch.cat((boxes[..., :2], boxes[..., 2:] + self.pixel_offset), dim=-1)

    def xyxy_from_xywh(self, x, y, width, height):
        """Corners from a top-left corner and a size (maskrcnn-benchmark's: a size below one pixel
        gives a one-pixel box)."""
        if not self.pixel_offset:
            return x, y, x + width, y + height
        return (x, y, x + (width - self.pixel_offset).clamp(min=0),
                y + (height - self.pixel_offset).clamp(min=0))

    # ---- the rules ---------------------------------------------------------------------------
    def nms_arguments(self, iou_threshold, suppresses_ties=None):
        """``(threshold, legacy)`` for ``layers.nms``: the kernel's ``legacy`` mode (+1 areas,
        suppression at IoU >= threshold) when corners are inclusive; suppression strictly above the
        threshold there is the same test at the next double above the threshold. ``suppresses_ties``
        overrides the convention's tie rule (None: the convention's). maskrcnn-benchmark's kernels
        take the threshold as a float32 and compare float32 IoUs with it: so does this (0.6 is
        0.6000000238..., which an IoU of 3 / 5 in float32 equals)."""
        threshold = float(iou_threshold)
        ties = self.nms_suppresses_ties if suppresses_ties is None else suppresses_ties
        if not self.pixel_offset:
            if ties:
                raise ValueError(f"box convention {self.name!r}: NMS with continuous boxes only "
                                 "suppresses above the threshold")
            return threshold, False
        threshold = struct.unpack("f", struct.pack("f", threshold))[0]
        return (threshold if ties else math.nextafter(threshold, math.inf)), True

    def resized_side(self, side):
        """The integer length of an image side scaled to the (float) ``side``."""
        return int(side) if self.truncate_resized_side else int(round(side))

    def paste_bounds(self, box):
        """Integer ``(x0, y0, x_end, y_end)`` of the pixels a mask pasted at ``box`` (4 floats)
        covers: ``[x0, x_end) x [y0, y_end)`` (``x_end`` may not exceed ``x0`` for a degenerate box
        with inclusive corners, which then pastes nothing)."""
        x1, y1, x2, y2 = (float(v) for v in box)
        if self.truncate_paste_corners:
            return int(x1), int(y1), int(x2) + 1, int(y2) + 1
        x0, y0 = math.floor(x1), math.floor(y1)
        return x0, y0, x0 + max(math.ceil(x2) - x0, 1), y0 + max(math.ceil(y2) - y0, 1)


MASKRCNN_BENCHMARK = BoxConvention(
    "maskrcnn_benchmark", pixel_offset=1, round_anchor_shapes=True, truncate_resized_side=True,
    nms_suppresses_ties=True, truncate_paste_corners=True,
)
MASKRCNN_BENCHMARK_CUDA = BoxConvention(
    "maskrcnn_benchmark_cuda", pixel_offset=1, round_anchor_shapes=True, truncate_resized_side=True,
    nms_suppresses_ties=False, truncate_paste_corners=True,
)
CONTINUOUS = BoxConvention(
    "continuous", pixel_offset=0, round_anchor_shapes=False, truncate_resized_side=False,
    nms_suppresses_ties=False, truncate_paste_corners=False,
)
BOX_CONVENTIONS = {c.name: c for c in (MASKRCNN_BENCHMARK, MASKRCNN_BENCHMARK_CUDA, CONTINUOUS)}
# What a function gets when it is not told: the convention of the default config and of
# maskrcnn-benchmark's own functions of the same names.
DEFAULT_BOX_CONVENTION = MASKRCNN_BENCHMARK
CONFIG_KEY = "MODEL.BOX_CONVENTION"


def box_convention(value, key=CONFIG_KEY):
    """A ``BoxConvention`` from itself or its name; an unknown name is an error naming ``key``."""
    if isinstance(value, BoxConvention):
        return value
    if value is None:
        return DEFAULT_BOX_CONVENTION
    if value not in BOX_CONVENTIONS:
        raise ValueError(f"{key}: unknown box convention {value!r}; expected one of {sorted(BOX_CONVENTIONS)}")
    return BOX_CONVENTIONS[value]


def box_convention_from_config(cfg):
    """The convention ``MODEL.BOX_CONVENTION`` names."""
    return box_convention(cfg.MODEL.BOX_CONVENTION)


def common_box_convention(owner, **parts):
    """The one convention of the ``parts`` of ``owner`` (each a BoxConvention, a name or None
    for "not given"): a module whose anchors, box coder and post-processing disagree would be
    silently wrong, so a disagreement is an error naming them. None when no part says."""
    given = {name: box_convention(value) for name, value in parts.items() if value is not None}
    names = sorted({convention.name for convention in given.values()})
    if len(names) > 1:
        listed = ", ".join(f"{name}: {convention.name}" for name, convention in given.items())
        raise ValueError(f"{owner}: its parts use different box conventions ({listed}); build them from "
                         f"one {CONFIG_KEY}")
    return next(iter(given.values()), None)
