"""Instance segmentation masks, stored either as polygons or as binary masks.

* ``PolygonInstance``: the polygons of one object (flat ``[x0, y0, x1, y1, ...]`` lists).
* ``PolygonList``: the ``PolygonInstance`` of every object of an image.
* ``BinaryMaskList``: an ``N x H x W`` uint8 tensor, one mask per object.
* ``SegmentationMask``: what a BoxList carries in its ``masks`` field; wraps either of the two
  lists (``mode="poly"`` or ``mode="mask"``) and follows the boxes through flips, crops,
  resizes and indexing.

Coordinates follow the project's box convention (see bounding_box.py): continuous, pixel ``i``
covers ``[i, i + 1)``, so a flip maps ``x`` to ``W - x`` and a polygon ``[2, 2, 5, 2, 5, 5, 2, 5]``
covers exactly the pixels 2, 3 and 4 in each direction. Sizes are ``(width, height)``.
"""
import cv2
import numpy as np
import pycocotools.mask as mask_utils
import torch
import torch.nn.functional as F

FLIP_LEFT_RIGHT = 0
FLIP_TOP_BOTTOM = 1

_MODES = ("poly", "mask")


def _check_size(size, owner):
    if len(size) != 2:
        raise ValueError(f"{owner} size must be (width, height), got {size!r}")
    return tuple(size)


def _check_flip(method):
    if method not in (FLIP_LEFT_RIGHT, FLIP_TOP_BOTTOM):
        raise ValueError(
            f"transpose method must be FLIP_LEFT_RIGHT ({FLIP_LEFT_RIGHT}) or "
            f"FLIP_TOP_BOTTOM ({FLIP_TOP_BOTTOM}), got {method!r}"
        )


def _pixel_size(size):
    """Integer (width, height) for rasterising; crops of float boxes have float sizes."""
    return max(int(round(float(size[0]))), 1), max(int(round(float(size[1]))), 1)


def _rle_to_mask(rle, height, width):
    """Decode a COCO RLE (compressed or uncompressed, as found in crowd annotations)."""
    if isinstance(rle.get("counts"), list):
        rle = mask_utils.frPyObjects(rle, height, width)
    mask = mask_utils.decode(rle)
    if mask.shape != (height, width):
        raise ValueError(f"RLE mask has shape {mask.shape}, the image is {(height, width)} (height, width)")
    return torch.from_numpy(np.ascontiguousarray(mask))


def _indices(item, length):
    """Turn any supported index (int, slice, list, index tensor, bool mask) into a list of ints."""
    if isinstance(item, int):
        return [item]
    if isinstance(item, slice):
        return list(range(length))[item]
    if isinstance(item, torch.Tensor):
        if item.dtype == torch.bool:
            if item.numel() != length:
                raise IndexError(f"boolean mask of length {item.numel()} for {length} instances")
            item = item.nonzero().flatten()
        return [int(i) for i in item.flatten().tolist()]
    return [int(i) for i in item]


def _clip_polygon_to_box(points, left, top, right, bottom):
    """Sutherland-Hodgman clipping of one polygon (``K x 2``) to an axis-aligned box.

    Clamping the vertices instead would cut away parts of the object near the box corners.
    Each of the four box sides keeps, in order, every vertex on its inner side and the crossing
    point of every edge that crosses it.
    """
    sides = ((0, left, True), (0, right, False), (1, top, True), (1, bottom, False))
    for axis, bound, keep_greater in sides:
        if points.shape[0] == 0:
            break
        following = points.roll(-1, dims=0)
        inside = points[:, axis] >= bound if keep_greater else points[:, axis] <= bound
        following_inside = following[:, axis] >= bound if keep_greater else following[:, axis] <= bound
        crosses = inside != following_inside
        step = following - points
        denominator = torch.where(crosses, step[:, axis], torch.ones_like(step[:, axis]))
        fraction = (bound - points[:, axis]) / denominator
        crossing_points = points + fraction[:, None] * step
        candidates = torch.stack((points, crossing_points), dim=1)  # K x 2 x 2
        keep = torch.stack((inside, crosses), dim=1)
        points = candidates[keep]
    return points


class PolygonInstance(object):
    """The polygons of one object. Polygons with fewer than 3 points (they occur in COCO) are
    dropped, since they enclose nothing."""

    def __init__(self, polygons, size):
        self.size = _check_size(size, "PolygonInstance")
        if isinstance(polygons, PolygonInstance):
            polygons = polygons.polygons
        if not isinstance(polygons, (list, tuple)):
            raise TypeError(
                f"PolygonInstance expects a list of flat [x0, y0, x1, y1, ...] polygons, got {type(polygons).__name__}"
            )
        valid = []
        for index, polygon in enumerate(polygons):
            polygon = torch.as_tensor(polygon, dtype=torch.float64).flatten()
            if polygon.numel() % 2 != 0:
                raise ValueError(f"polygon {index} has an odd number of coordinates ({polygon.numel()})")
            if polygon.numel() >= 6:
                valid.append(polygon)
        self.polygons = valid

    def transpose(self, method):
        _check_flip(method)
        axis, extent = (0, self.size[0]) if method == FLIP_LEFT_RIGHT else (1, self.size[1])
        flipped = []
        for polygon in self.polygons:
            polygon = polygon.clone()
            polygon[axis::2] = extent - polygon[axis::2]
            flipped.append(polygon)
        return PolygonInstance(flipped, self.size)

    def crop(self, box):
        """The parts of the polygons inside ``box = (x1, y1, x2, y2)`` and inside the image, in the
        box's frame (parts of the box outside the image hold nothing, as for binary masks)."""
        left, top, right, bottom = [float(v) for v in box]
        image_width, image_height = (float(v) for v in self.size)
        cropped = []
        for polygon in self.polygons:
            points = _clip_polygon_to_box(polygon.reshape(-1, 2), max(left, 0.0), max(top, 0.0),
                                          min(right, image_width), min(bottom, image_height))
            points = points - points.new_tensor([left, top])
            cropped.append(points.flatten())
        return PolygonInstance(cropped, (right - left, bottom - top))

    def resize(self, size):
        ratio_w = float(size[0]) / float(self.size[0])
        ratio_h = float(size[1]) / float(self.size[1])
        resized = []
        for polygon in self.polygons:
            polygon = polygon.clone()
            polygon[0::2] *= ratio_w
            polygon[1::2] *= ratio_h
            resized.append(polygon)
        return PolygonInstance(resized, size)

    def convert_to_binarymask(self):
        """Rasterise (pycocotools) into an ``H x W`` uint8 tensor."""
        width, height = _pixel_size(self.size)
        if not self.polygons:
            return torch.zeros((height, width), dtype=torch.uint8)
        rles = mask_utils.frPyObjects([polygon.tolist() for polygon in self.polygons], height, width)
        mask = mask_utils.decode(mask_utils.merge(rles))
        return torch.from_numpy(np.ascontiguousarray(mask))

    def __len__(self):
        return len(self.polygons)

    def __repr__(self):
        return f"PolygonInstance(num_polygons={len(self)}, image_width={self.size[0]}, image_height={self.size[1]})"


class PolygonList(object):
    """One PolygonInstance per object of an image."""

    def __init__(self, polygons, size):
        self.size = _check_size(size, "PolygonList")
        if isinstance(polygons, PolygonList):
            polygons = polygons.polygons
        if not isinstance(polygons, (list, tuple)):
            raise TypeError(
                f"PolygonList expects a list (one entry per object) of lists of polygons, got {type(polygons).__name__}"
            )
        self.polygons = [PolygonInstance(instance, self.size) for instance in polygons]

    def transpose(self, method):
        return PolygonList([instance.transpose(method) for instance in self.polygons], self.size)

    def crop(self, box):
        left, top, right, bottom = [float(v) for v in box]
        cropped = [instance.crop(box) for instance in self.polygons]
        return PolygonList(cropped, (right - left, bottom - top))

    def resize(self, size):
        return PolygonList([instance.resize(size) for instance in self.polygons], size)

    def to(self, *args, **kwargs):
        # Polygons are only ever rasterised on the CPU; they stay there.
        return self

    def convert_to_binarymask(self):
        if not self.polygons:
            width, height = _pixel_size(self.size)
            return BinaryMaskList(torch.zeros((0, height, width), dtype=torch.uint8), self.size)
        masks = torch.stack([instance.convert_to_binarymask() for instance in self.polygons])
        return BinaryMaskList(masks, self.size)

    def __len__(self):
        return len(self.polygons)

    def __getitem__(self, item):
        selected = [self.polygons[i] for i in _indices(item, len(self))]
        return PolygonList(selected, self.size)

    def __repr__(self):
        return f"PolygonList(num_instances={len(self)}, image_width={self.size[0]}, image_height={self.size[1]})"


class BinaryMaskList(object):
    """``N`` binary masks of one image as an ``N x H x W`` uint8 tensor ``masks``.

    Accepts an ``N x H x W`` (or ``H x W``) tensor or array, a list of ``H x W`` tensors/arrays
    or COCO RLE dicts, or another BinaryMaskList.
    """

    def __init__(self, masks, size):
        self.size = _pixel_size(_check_size(size, "BinaryMaskList"))
        width, height = self.size
        if isinstance(masks, BinaryMaskList):
            masks = masks.masks
        if isinstance(masks, (list, tuple)):
            if len(masks) == 0:
                masks = torch.zeros((0, height, width), dtype=torch.uint8)
            else:
                masks = torch.stack([self._one_mask(mask, height, width) for mask in masks])
        masks = torch.as_tensor(masks)
        if masks.dim() == 2:
            masks = masks[None]
        if masks.dim() != 3 or tuple(masks.shape[-2:]) != (height, width):
            raise ValueError(
                f"BinaryMaskList masks must be N x {height} x {width} for size {self.size}, got {tuple(masks.shape)}"
            )
        self.masks = (masks != 0).to(torch.uint8) if masks.dtype != torch.uint8 else masks

    @staticmethod
    def _one_mask(mask, height, width):
        if isinstance(mask, dict):
            return _rle_to_mask(mask, height, width)
        mask = torch.as_tensor(mask)
        if tuple(mask.shape) != (height, width):
            raise ValueError(f"mask has shape {tuple(mask.shape)}, the image is {(height, width)} (height, width)")
        return (mask != 0).to(torch.uint8)

    def transpose(self, method):
        _check_flip(method)
        flipped = self.masks.flip(-1 if method == FLIP_LEFT_RIGHT else -2)
        return BinaryMaskList(flipped, self.size)

    def crop(self, box):
        """The region ``box = (x1, y1, x2, y2)``; parts of the box that lie outside the image come
        out as zeros. The result is the raster a cropped polygon gives: ``round(x2 - x1)`` x
        ``round(y2 - y1)`` pixels, pixel ``j`` being the source pixel nearest to ``x1 + j + 0.5``
        (so a fractional box shifts by at most half a pixel, and both modes keep one frame)."""
        x1, y1, x2, y2 = [float(v) for v in box]
        out_width, out_height = _pixel_size((x2 - x1, y2 - y1))
        left, top = int(np.floor(x1 + 0.5)), int(np.floor(y1 + 0.5))
        right, bottom = left + out_width, top + out_height
        width, height = self.size
        cropped = self.masks.new_zeros((len(self), bottom - top, right - left))
        src_x1, src_y1 = max(left, 0), max(top, 0)
        src_x2, src_y2 = min(right, width), min(bottom, height)
        if src_x2 > src_x1 and src_y2 > src_y1:
            cropped[:, src_y1 - top : src_y2 - top, src_x1 - left : src_x2 - left] = self.masks[
                :, src_y1:src_y2, src_x1:src_x2
            ]
        return BinaryMaskList(cropped, (right - left, bottom - top))

    def resize(self, size):
        """Bilinear resampling of the 0/1 masks, thresholded at 0.5."""
        width, height = _pixel_size(size)
        if len(self) == 0:
            return BinaryMaskList(self.masks.new_zeros((0, height, width)), (width, height))
        resampled = F.interpolate(self.masks[None].float(), size=(height, width), mode="bilinear", align_corners=False)
        return BinaryMaskList((resampled[0] >= 0.5).to(torch.uint8), (width, height))

    def convert_to_polygon(self):
        """Outer contours (OpenCV) of every mask as polygons along the pixel edges.

        The mask is upsampled 2x first: the contour of the upsampled mask runs through pixels on
        both sides of every original pixel edge, and ``(u + 1) // 2`` maps those back onto the
        edge itself, so rasterising the polygons gives back the same pixels (holes excepted).
        """
        instances = []
        for mask in self.masks.cpu().numpy():
            upsampled = np.ascontiguousarray(mask.repeat(2, axis=0).repeat(2, axis=1))
            contours, _hierarchy = cv2.findContours(upsampled, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            polygons = [((contour.reshape(-1, 2) + 1) // 2).astype(np.float64).ravel() for contour in contours]
            instances.append([polygon for polygon in polygons if polygon.size >= 6])
        return PolygonList(instances, self.size)

    def to(self, *args, **kwargs):
        return BinaryMaskList(self.masks.to(*args, **kwargs), self.size)

    def __len__(self):
        return self.masks.shape[0]

    def __getitem__(self, index):
        if isinstance(index, int):
            index = [index]
        return BinaryMaskList(self.masks[index], self.size)

    def __repr__(self):
        return f"BinaryMaskList(num_instances={len(self)}, image_width={self.size[0]}, image_height={self.size[1]})"


def _polygons_of(instance, size):
    """One object's data (polygon list, PolygonInstance, RLE dict or H x W mask) as polygons."""
    if isinstance(instance, PolygonInstance):
        return instance
    if isinstance(instance, (list, tuple)):
        return PolygonInstance(instance, size)
    mask = BinaryMaskList([instance], size)
    return mask.convert_to_polygon().polygons[0]


def _mask_of(instance, size):
    """One object's data (polygon list, PolygonInstance, RLE dict or H x W mask) as a mask."""
    if isinstance(instance, (list, tuple, PolygonInstance)):
        return PolygonInstance(instance, size).convert_to_binarymask()
    return BinaryMaskList([instance], size).masks[0]


class SegmentationMask(object):
    """The masks of the objects of one image, as polygons (``mode="poly"``) or binary masks
    (``mode="mask"``).

    ``instances`` may be a list with one entry per object (a list of flat polygons as in COCO
    annotations, a COCO RLE dict, or an ``H x W`` mask), an ``N x H x W`` tensor, a PolygonList,
    a BinaryMaskList or a SegmentationMask. Whatever the input, it is converted to ``mode``.
    """

    def __init__(self, instances, size, mode="poly"):
        if mode not in _MODES:
            raise ValueError(f"SegmentationMask mode must be one of {_MODES}, got mode={mode!r}")
        self.size = _check_size(size, "SegmentationMask")
        self.mode = mode
        if isinstance(instances, SegmentationMask):
            instances = instances.instances
        if isinstance(instances, (torch.Tensor, np.ndarray)):
            instances = BinaryMaskList(instances, self.size)

        if isinstance(instances, (PolygonList, BinaryMaskList)):
            if mode == "poly" and isinstance(instances, BinaryMaskList):
                instances = instances.convert_to_polygon()
            elif mode == "mask" and isinstance(instances, PolygonList):
                instances = instances.convert_to_binarymask()
        elif isinstance(instances, (list, tuple)):
            if mode == "poly":
                instances = PolygonList([_polygons_of(item, self.size) for item in instances], self.size)
            else:
                instances = BinaryMaskList([_mask_of(item, self.size) for item in instances], self.size)
        else:
            raise TypeError(
                f"SegmentationMask cannot be built from a {type(instances).__name__}; expected a list of "
                "per-object polygons/RLEs/masks, an N x H x W tensor, a PolygonList or a BinaryMaskList"
            )
        self.instances = instances

    def _wrap(self, instances):
        return SegmentationMask(instances, instances.size, self.mode)

    def transpose(self, method):
        return self._wrap(self.instances.transpose(method))

    def crop(self, box):
        return self._wrap(self.instances.crop(box))

    def resize(self, size, *args, **kwargs):
        return self._wrap(self.instances.resize(size))

    def to(self, *args, **kwargs):
        return self._wrap(self.instances.to(*args, **kwargs))

    def convert(self, mode):
        """The same masks in the other representation (``"poly"`` or ``"mask"``)."""
        return SegmentationMask(self.instances, self.size, mode)

    def get_mask_tensor(self):
        """The masks as a uint8 tensor, ``N x H x W``.

        As in maskrcnn-benchmark, a single instance comes back as ``H x W`` (the mask head crops
        and resizes one instance per proposal and stacks the results).
        """
        masks = self.instances if self.mode == "mask" else self.instances.convert_to_binarymask()
        return masks.masks.squeeze(0)

    @staticmethod
    def cat(segmentation_masks):
        """Concatenate the instances of several SegmentationMasks of the same image (used by
        cat_boxlist); the result takes the mode of the first."""
        first = segmentation_masks[0]
        for index, other in enumerate(segmentation_masks):
            if tuple(other.size) != tuple(first.size):
                raise ValueError(f"SegmentationMask.cat: item {index} has size {other.size}, item 0 has {first.size}")
        if first.mode == "poly":
            polygons = [inst for m in segmentation_masks for inst in m.convert("poly").instances.polygons]
            return SegmentationMask(PolygonList(polygons, first.size), first.size, "poly")
        masks = torch.cat([m.convert("mask").instances.masks for m in segmentation_masks])
        return SegmentationMask(BinaryMaskList(masks, first.size), first.size, "mask")

    def __len__(self):
        return len(self.instances)

    def __getitem__(self, item):
        return self._wrap(self.instances[item])

    def __iter__(self):
        for index in range(len(self)):
            yield self[index]

    def __repr__(self):
        return (
            f"SegmentationMask(num_instances={len(self)}, image_width={self.size[0]}, "
            f"image_height={self.size[1]}, mode={self.mode})"
        )
