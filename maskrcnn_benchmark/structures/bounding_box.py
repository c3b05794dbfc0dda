"""BoxList: the boxes of one image, plus per-box fields (labels, scores, masks, ...).

What the corners mean is the box convention (``box_convention.py``): the methods whose result
depends on it (the xywh conversion, ``area``, flips and clipping) take a ``convention``, by default
maskrcnn-benchmark's (inclusive pixel corners, width ``x2 - x1 + 1``), as its methods of the same
names; ``CONTINUOUS`` gives width ``x2 - x1``, flips ``x1' = W - x2`` and clipping to ``[0, W]``.
Scaling (``resize``) and ``crop`` multiply and shift the corners as they are, in either.

``image_size`` is ``(width, height)``, as PIL reports it.
"""
import torch

from .box_convention import DEFAULT_BOX_CONVENTION, box_convention

FLIP_LEFT_RIGHT = 0
FLIP_TOP_BOTTOM = 1

_MODES = ("xyxy", "xywh")


def _movable(field_data, method):
    """True when a field is an object that knows how to follow a geometric change of the boxes
    (for example a SegmentationMask). Plain tensors (labels, scores) are per-box values that
    stay as they are, even though ``torch.Tensor`` happens to have methods named ``resize`` and
    ``transpose``."""
    return not isinstance(field_data, torch.Tensor) and hasattr(field_data, method)


class BoxList(object):
    """A set of ``N`` boxes (an ``N x 4`` tensor) on one image, in ``xyxy`` or ``xywh`` mode.

    Extra per-box data lives in ``extra_fields`` and follows the boxes through indexing,
    resizing, flipping and cropping.
    """

    def __init__(self, bbox, image_size, mode="xyxy"):
        if mode not in _MODES:
            raise ValueError(f"BoxList mode must be one of {_MODES}, got mode={mode!r}")
        if not isinstance(bbox, torch.Tensor):
            bbox = torch.as_tensor(bbox, dtype=torch.float32)
        elif not bbox.is_floating_point():
            bbox = bbox.float()
        if bbox.numel() == 0:
            bbox = bbox.reshape(0, 4)
        if bbox.dim() != 2 or bbox.size(-1) != 4:
            raise ValueError(f"BoxList bbox must have shape (N, 4), got {tuple(bbox.shape)}")
        if len(image_size) != 2:
            raise ValueError(f"BoxList image_size must be (width, height), got {image_size!r}")
        self.bbox = bbox
        self.size = tuple(image_size)
        self.mode = mode
        self.extra_fields = {}

    # ------------------------------------------------------------------ fields
    def add_field(self, field, field_data):
        self.extra_fields[field] = field_data

    def get_field(self, field):
        if field not in self.extra_fields:
            raise KeyError(f"BoxList has no field {field!r}; its fields are {self.fields()}")
        return self.extra_fields[field]

    def has_field(self, field):
        return field in self.extra_fields

    def fields(self):
        return list(self.extra_fields.keys())

    def _copy_extra_fields(self, other):
        for field, field_data in other.extra_fields.items():
            self.extra_fields[field] = field_data

    def copy_with_fields(self, fields, skip_missing=False):
        """A BoxList with the same boxes and only the named fields (a name or a list of names)."""
        copy = BoxList(self.bbox, self.size, self.mode)
        if isinstance(fields, str):
            fields = [fields]
        for field in fields:
            if self.has_field(field):
                copy.add_field(field, self.get_field(field))
            elif not skip_missing:
                raise KeyError(f"BoxList has no field {field!r}; its fields are {self.fields()}")
        return copy

    # ------------------------------------------------------------------ modes
    def _split_into_xyxy(self, convention=DEFAULT_BOX_CONVENTION):
        """The four coordinate columns (each ``N x 1``) as x1, y1, x2, y2."""
        if self.mode == "xyxy":
            return self.bbox.split(1, dim=-1)
        x1, y1, w, h = self.bbox.split(1, dim=-1)
        return box_convention(convention).xyxy_from_xywh(x1, y1, w, h)

    def convert(self, mode, convention=DEFAULT_BOX_CONVENTION):
        """The same boxes in ``mode`` (returns ``self`` when nothing changes); the width of an
        ``xywh`` box is the ``convention``'s."""
        if mode not in _MODES:
            raise ValueError(f"BoxList mode must be one of {_MODES}, got mode={mode!r}")
        if mode == self.mode:
            return self
        convention = box_convention(convention)
        x1, y1, x2, y2 = self._split_into_xyxy(convention)
        if mode == "xyxy":
            bbox = torch.cat((x1, y1, x2, y2), dim=-1)
        else:
            bbox = torch.cat((x1, y1, convention.length(x1, x2), convention.length(y1, y2)), dim=-1)
        converted = BoxList(bbox, self.size, mode=mode)
        converted._copy_extra_fields(self)
        return converted

    # ------------------------------------------------------------------ geometry
    def resize(self, size, *args, convention=DEFAULT_BOX_CONVENTION, **kwargs):
        """Rescale to a new image size ``(width, height)``; x and y may scale differently (then
        ``xywh`` boxes pass through corners of the ``convention``)."""
        ratio_w = float(size[0]) / float(self.size[0])
        ratio_h = float(size[1]) / float(self.size[1])
        if ratio_w == ratio_h:
            bbox = self.bbox * ratio_w
            resized = BoxList(bbox, size, mode=self.mode)
        else:
            x1, y1, x2, y2 = self._split_into_xyxy(convention)
            bbox = torch.cat((x1 * ratio_w, y1 * ratio_h, x2 * ratio_w, y2 * ratio_h), dim=-1)
            resized = BoxList(bbox, size, mode="xyxy")
        for field, field_data in self.extra_fields.items():
            if _movable(field_data, "resize"):
                field_data = field_data.resize(size, *args, **kwargs)
            resized.add_field(field, field_data)
        return resized.convert(self.mode, convention)

    def transpose(self, method, convention=DEFAULT_BOX_CONVENTION):
        """Flip the boxes (and movable fields) with FLIP_LEFT_RIGHT or FLIP_TOP_BOTTOM; a flipped
        box starts at ``W - x2`` less the ``convention``'s pixel offset."""
        convention = box_convention(convention)
        image_width, image_height = self.size
        x1, y1, x2, y2 = self._split_into_xyxy(convention)
        if method == FLIP_LEFT_RIGHT:
            x1, x2 = convention.flip_coordinates(x1, x2, image_width)
            bbox = torch.cat((x1, y1, x2, y2), dim=-1)
        elif method == FLIP_TOP_BOTTOM:
            y1, y2 = convention.flip_coordinates(y1, y2, image_height)
            bbox = torch.cat((x1, y1, x2, y2), dim=-1)
        else:
            raise ValueError(
                f"transpose method must be FLIP_LEFT_RIGHT ({FLIP_LEFT_RIGHT}) or "
                f"FLIP_TOP_BOTTOM ({FLIP_TOP_BOTTOM}), got {method!r}"
            )
        flipped = BoxList(bbox, self.size, mode="xyxy")
        for field, field_data in self.extra_fields.items():
            if _movable(field_data, "transpose"):
                field_data = field_data.transpose(method)
            flipped.add_field(field, field_data)
        return flipped.convert(self.mode, convention)

    def crop(self, box):
        """Cut out the region ``box = (x1, y1, x2, y2)``: boxes move into its frame and are
        clamped to it. Boxes that fall outside become empty; they are not removed."""
        left, top, right, bottom = [float(v) for v in box]
        crop_width, crop_height = right - left, bottom - top
        x1, y1, x2, y2 = self._split_into_xyxy()
        bbox = torch.cat(
            (
                (x1 - left).clamp(min=0, max=crop_width),
                (y1 - top).clamp(min=0, max=crop_height),
                (x2 - left).clamp(min=0, max=crop_width),
                (y2 - top).clamp(min=0, max=crop_height),
            ),
            dim=-1,
        )
        cropped = BoxList(bbox, (crop_width, crop_height), mode="xyxy")
        for field, field_data in self.extra_fields.items():
            if _movable(field_data, "crop"):
                field_data = field_data.crop(box)
            cropped.add_field(field, field_data)
        return cropped.convert(self.mode)

    def clip_to_image(self, remove_empty=True, convention=DEFAULT_BOX_CONVENTION):
        """Clamp the boxes to the image (``[0, W - 1]`` with inclusive pixel corners, ``[0, W]``
        with continuous ones); with ``remove_empty`` drop the boxes left with ``x2 <= x1`` or
        ``y2 <= y1`` (maskrcnn-benchmark's rule, also with inclusive corners, where such a box
        still covers a pixel: see ``BoxConvention.nonempty`` for the boxes without any).

        The clamped boxes are a new tensor (``self.bbox`` is rebound, never written into), so
        clipping boxes that are a view of a tensor requiring grad keeps autograd intact.
        Returns ``self`` (or, with ``remove_empty``, the kept subset).
        """
        convention = box_convention(convention)
        x1, y1, x2, y2 = convention.clip(torch.cat(self._split_into_xyxy(convention), dim=-1), self.size).split(1, dim=-1)
        if self.mode == "xyxy":
            self.bbox = torch.cat((x1, y1, x2, y2), dim=-1)
        else:
            self.bbox = torch.cat((x1, y1, convention.length(x1, x2), convention.length(y1, y2)), dim=-1)
        if remove_empty:
            keep = ((x2 > x1) & (y2 > y1)).squeeze(-1)
            return self[keep]
        return self

    def area(self, convention=DEFAULT_BOX_CONVENTION):
        if self.mode == "xyxy":
            return box_convention(convention).areas(self.bbox)
        return self.bbox[:, 2] * self.bbox[:, 3]

    # ------------------------------------------------------------------ containers
    def to(self, device):
        moved = BoxList(self.bbox.to(device), self.size, self.mode)
        for field, field_data in self.extra_fields.items():
            if hasattr(field_data, "to"):
                field_data = field_data.to(device)
            moved.add_field(field, field_data)
        return moved

    def __getitem__(self, item):
        """Select boxes (and the matching entries of every field) with an int, a slice, a list
        of indices, an index tensor or a boolean mask. The result is always a BoxList."""
        if isinstance(item, int):
            item = [item]
        subset = BoxList(self.bbox[item], self.size, self.mode)
        for field, field_data in self.extra_fields.items():
            subset.add_field(field, field_data[item])
        return subset

    def __len__(self):
        return self.bbox.shape[0]

    def __repr__(self):
        return (
            f"{self.__class__.__name__}(num_boxes={len(self)}, image_width={self.size[0]}, "
            f"image_height={self.size[1]}, mode={self.mode})"
        )
