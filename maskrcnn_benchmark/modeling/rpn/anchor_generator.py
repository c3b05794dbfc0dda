"""Dense reference boxes (anchors) on every feature-map location."""
import math

import torch
from torch import nn

from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.box_convention import (
    DEFAULT_BOX_CONVENTION,
    box_convention,
    box_convention_from_config,
)
from maskrcnn_benchmark.structures.boxlist_ops import cat_boxlist


class BufferList(nn.Module):
    """A list of tensors that follow the module across devices.

    The buffers are not persistent: anchors are a pure function of the config, so a checkpoint
    (ours or one converted from elsewhere) never overrides them.
    """

    def __init__(self, buffers=None):
        super(BufferList, self).__init__()
        if buffers is not None:
            self.extend(buffers)

    def extend(self, buffers):
        offset = len(self)
        for i, buffer in enumerate(buffers):
            self.register_buffer(str(offset + i), buffer, persistent=False)
        return self

    def __len__(self):
        return len(self._buffers)

    def __iter__(self):
        return iter(self._buffers.values())


def generate_anchors(stride=16, sizes=(32, 64, 128, 256, 512), aspect_ratios=(0.5, 1, 2),
                     convention=DEFAULT_BOX_CONVENTION, centre_at_half_stride=False):
    """``A x 4`` anchors centred in a ``stride x stride`` cell at the origin, in ``convention``.

    One anchor per (aspect ratio, size), ratio-major; aspect ratio is height / width and an anchor
    of size ``s`` has area about ``s**2``. With whole-pixel anchor shapes (maskrcnn-benchmark), the
    width and height of each ratio are first rounded at the stride (``round(sqrt(stride**2 /
    ratio))`` and that times the ratio, rounded) and then scaled by ``size / stride``; the centre
    is the cell's centre pixel ``(stride - 1) / 2``, or ``stride / 2`` with
    ``centre_at_half_stride`` (the anchors of the ATSS and PAA code bases). Continuous anchors have
    the exact sizes, centred at ``stride / 2``.
    """
    convention = box_convention(convention)
    if not convention.round_anchor_shapes:
        anchors = []
        center = stride / 2.0
        for ratio in aspect_ratios:
            for size in sizes:
                width = size / math.sqrt(ratio)
                height = size * math.sqrt(ratio)
                anchors.append(
                    [center - width / 2, center - height / 2, center + width / 2, center + height / 2]
                )
        return torch.tensor(anchors, dtype=torch.float32)

    # Computed in float64 and rounded to float32 at the end, as maskrcnn-benchmark does.
    offset = convention.pixel_offset
    center = stride / 2.0 if centre_at_half_stride else (stride - offset) / 2.0
    anchors = []
    for ratio in aspect_ratios:
        ratio_width = float(round(math.sqrt(float(stride) * stride / ratio)))  # half to even, as numpy
        ratio_height = float(round(ratio_width * ratio))
        for size in sizes:
            scale = float(size) / stride
            half_width = 0.5 * (ratio_width * scale - offset)
            half_height = 0.5 * (ratio_height * scale - offset)
            anchors.append([center - half_width, center - half_height, center + half_width, center + half_height])
    return torch.tensor(anchors, dtype=torch.float64).float()


class AnchorGenerator(nn.Module):
    """Anchors for each image and each feature level, as BoxLists with a "visibility" field.

    ``sizes`` holds one tuple of sizes per level (or, without FPN, one tuple for the single
    level); ``anchor_strides`` one stride per level. Anchors whose box leaves the image by more
    than ``straddle_thresh`` pixels are marked invisible (never trained); a negative threshold
    keeps all of them. ``convention`` and ``centre_at_half_stride``: see ``generate_anchors``.
    """

    def __init__(
        self,
        sizes=((32,), (64,), (128,), (256,), (512,)),
        aspect_ratios=(0.5, 1.0, 2.0),
        anchor_strides=(4, 8, 16, 32, 64),
        straddle_thresh=0,
        convention=DEFAULT_BOX_CONVENTION,
        centre_at_half_stride=False,
    ):
        super(AnchorGenerator, self).__init__()
        sizes = [tuple(s) if isinstance(s, (tuple, list)) else (s,) for s in sizes]
        if len(anchor_strides) == 1 and len(sizes) > 1:
            # Single-level (C4) layout: all sizes share the one stride.
            sizes = [tuple(size for level in sizes for size in level)]
        if len(sizes) != len(anchor_strides):
            raise ValueError(
                "AnchorGenerator: {} anchor size groups for {} strides {}".format(
                    len(sizes), len(anchor_strides), tuple(anchor_strides)
                )
            )
        self.strides = tuple(anchor_strides)
        self.convention = box_convention(convention)
        self.cell_anchors = BufferList(
            [generate_anchors(stride, s, aspect_ratios, self.convention, centre_at_half_stride)
             for stride, s in zip(self.strides, sizes)]
        )
        self.straddle_thresh = straddle_thresh

    def num_anchors_per_location(self):
        return [len(cell) for cell in self.cell_anchors]

    def grid_positions(self, grid_sizes, device=None):
        """The dense heads' name for ``grid_anchors`` (points heads have the same method); the
        anchors are on the device of this module's buffers."""
        return self.grid_anchors(grid_sizes)

    def grid_anchors(self, grid_sizes):
        """Per level, ``(H * W * A) x 4`` anchors, location-major then anchor."""
        anchors = []
        for (height, width), stride, base in zip(grid_sizes, self.strides, self.cell_anchors):
            shifts_x = torch.arange(width, dtype=torch.float32, device=base.device) * stride
            shifts_y = torch.arange(height, dtype=torch.float32, device=base.device) * stride
            shift_y, shift_x = torch.meshgrid(shifts_y, shifts_x, indexing="ij")
            shift_x, shift_y = shift_x.reshape(-1), shift_y.reshape(-1)
            shifts = torch.stack((shift_x, shift_y, shift_x, shift_y), dim=1)
            anchors.append((shifts[:, None, :] + base[None, :, :]).reshape(-1, 4))
        return anchors

    def add_visibility_to(self, boxlist):
        image_width, image_height = boxlist.size
        anchors = boxlist.bbox
        if self.straddle_thresh >= 0:
            t = self.straddle_thresh
            visible = (
                (anchors[:, 0] >= -t)
                & (anchors[:, 1] >= -t)
                & (anchors[:, 2] < image_width + t)
                & (anchors[:, 3] < image_height + t)
            )
        else:
            visible = torch.ones(anchors.shape[0], dtype=torch.bool, device=anchors.device)
        boxlist.add_field("visibility", visible)

    def anchors_for_grid(self, grid_sizes, image_sizes):
        """Anchors for images of ``image_sizes`` (``(h, w)`` each) on feature maps of ``grid_sizes``."""
        level_anchors = self.grid_anchors(grid_sizes)
        result = []
        for image_height, image_width in image_sizes:
            per_level = []
            for anchors in level_anchors:
                boxlist = BoxList(anchors, (image_width, image_height), mode="xyxy")
                self.add_visibility_to(boxlist)
                per_level.append(boxlist)
            result.append(per_level)
        return result

    def forward(self, image_list, feature_maps):
        grid_sizes = [tuple(feature_map.shape[-2:]) for feature_map in feature_maps]
        return self.anchors_for_grid(grid_sizes, image_list.image_sizes)


def feature_grid_sizes(padded_size, strides):
    """Feature-map sizes a ResNet/FPN produces for a padded image: every stride-2 stage rounds up."""
    height, width = padded_size
    return [(int(math.ceil(height / s)), int(math.ceil(width / s))) for s in strides]


def padded_image_size(image_size, size_divisibility):
    """The ``(h, w)`` an image is padded to by batching with ``size_divisibility``."""
    height, width = image_size
    if size_divisibility > 0:
        height = int(math.ceil(height / size_divisibility) * size_divisibility)
        width = int(math.ceil(width / size_divisibility) * size_divisibility)
    return height, width


def image_grid_sizes(image_size, size_divisibility, strides):
    """The feature-map sizes, per stride, for an image of ``(h, w)`` as the network sees it
    after batching with ``size_divisibility``."""
    return feature_grid_sizes(padded_image_size(image_size, size_divisibility), strides)


def positions_for_image_size(generator, image_size, size_divisibility, device=None):
    """Per level, the positions of ``generator`` (an AnchorGenerator: anchors ``[A_l, 4]``; a
    dense_heads PointGenerator: points ``[P_l, 2]``) for an image of ``(h, w)``, without a forward
    pass: the feature maps follow from the padded size and the strides. Used to count samples
    for the optimal bias init."""
    return generator.grid_positions(image_grid_sizes(image_size, size_divisibility, generator.strides), device)


def anchors_for_image_sizes(anchor_generator, image_sizes, size_divisibility):
    """Per image, all anchors (levels joined, with "visibility") for images of ``(h, w)`` sizes
    as the network would see them after batching (see ``positions_for_image_size``)."""
    anchors = []
    for image_size in image_sizes:
        grid = image_grid_sizes(image_size, size_divisibility, anchor_generator.strides)
        per_level = anchor_generator.anchors_for_grid(grid, [tuple(image_size)])[0]
        anchors.append(cat_boxlist(per_level))
    return anchors


def make_anchor_generator(config):
    convention = box_convention_from_config(config)
    anchor_sizes = config.MODEL.RPN.ANCHOR_SIZES
    aspect_ratios = config.MODEL.RPN.ASPECT_RATIOS
    anchor_stride = config.MODEL.RPN.ANCHOR_STRIDE
    straddle_thresh = config.MODEL.RPN.STRADDLE_THRESH

    if config.MODEL.RPN.USE_FPN:
        if len(anchor_stride) != len(anchor_sizes):
            raise ValueError(
                "MODEL.RPN.ANCHOR_STRIDE {} must have one entry per MODEL.RPN.ANCHOR_SIZES {} "
                "when MODEL.RPN.USE_FPN is True".format(tuple(anchor_stride), tuple(anchor_sizes))
            )
        sizes = [(size,) for size in anchor_sizes]
    else:
        if len(anchor_stride) != 1:
            raise ValueError(
                "MODEL.RPN.ANCHOR_STRIDE {} must have a single entry when MODEL.RPN.USE_FPN is "
                "False".format(tuple(anchor_stride))
            )
        sizes = [tuple(anchor_sizes)]
    return AnchorGenerator(sizes, aspect_ratios, anchor_stride, straddle_thresh, convention)


def octave_anchor_generator(sizes, aspect_ratios, strides, octave=2.0, scales_per_octave=3, straddle_thresh=0,
                            convention=DEFAULT_BOX_CONVENTION, centre_at_half_stride=False):
    """Anchors of the dense heads: per level ``scales_per_octave`` sizes spaced by octaves, size
    s of a level giving s * octave ** (k / scales_per_octave), k = 0 .. scales_per_octave - 1."""
    if len(strides) != len(sizes):
        raise ValueError(
            "ANCHOR_STRIDES {} must have one entry per ANCHOR_SIZES {} (anchor config group)".format(
                tuple(strides), tuple(sizes)
            )
        )
    level_sizes = [
        tuple(size * octave ** (scale / float(scales_per_octave)) for scale in range(scales_per_octave))
        for size in sizes
    ]
    return AnchorGenerator(level_sizes, aspect_ratios, strides, straddle_thresh, convention, centre_at_half_stride)


def make_anchor_generator_retinanet(config, head_config=None, centre_at_half_stride=False):
    """``octave_anchor_generator`` from a head's config group (default ``MODEL.RETINANET``; ATSS
    and PAA pass theirs, which carry the same anchor keys, and centre their anchors at half the
    stride as their code bases do)."""
    group = config.MODEL.RETINANET if head_config is None else head_config
    return octave_anchor_generator(
        group.ANCHOR_SIZES, group.ASPECT_RATIOS, group.ANCHOR_STRIDES, group.OCTAVE, group.SCALES_PER_OCTAVE,
        group.STRADDLE_THRESH, box_convention_from_config(config), centre_at_half_stride,
    )
