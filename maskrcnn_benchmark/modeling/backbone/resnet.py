"""ResNet and ResNeXt bodies (and the res5 head of C4 detectors).

The body is built from explicit arguments (``ResNet.from_config`` reads them from the config):
- ``conv_body`` (MODEL.BACKBONE.CONV_BODY) picks depth and which stages are built / returned
  (``_STAGE_SPECS``); R-18 and R-34 use basic (two 3x3) blocks, deeper nets bottleneck blocks.
- ``trans_func`` / ``stem_func`` (MODEL.RESNETS.TRANS_FUNC / STEM_FUNC) pick the normalization:
  frozen BN (affine transform with fixed statistics, the usual choice with ImageNet weights),
  GroupNorm (with the ``gn`` settings, MODEL.GROUP_NORM), or trainable BN.
- ``num_groups`` x ``width_per_group`` is the res2 bottleneck width (32 x 8 gives ResNeXt 32x8d),
  ``res2_out_channels`` / ``stem_out_channels`` the widths; every later stage doubles them.
- ``stage_with_dcn`` swaps the 3x3 conv of a stage's blocks for a deformable one.

Module names (``stem.conv1``, ``layer1.0.conv1``, ``layer1.0.bn1``, ``layer1.0.downsample.0/1``) are
maskrcnn-benchmark's, which the C2 and torchvision weight mappings rely on.
"""
import functools
from collections import namedtuple

import torch.nn.functional as F
from torch import nn

from maskrcnn_benchmark.layers import BatchNorm2d, Conv2d, FrozenBatchNorm2d
from maskrcnn_benchmark.config.configurable import configurable
from maskrcnn_benchmark.modeling.make_layers import GroupNormSettings, group_norm

from .deform_conv import DFConv2d

# index: stage number (1 = res2 ... 4 = res5); block_count: residual blocks in it;
# return_features: whether the body outputs this stage's feature map.
StageSpec = namedtuple("StageSpec", ["index", "block_count", "return_features"])

BLOCKS_PER_STAGE = {
    "R-18": (2, 2, 2, 2),
    "R-34": (3, 4, 6, 3),
    "R-50": (3, 4, 6, 3),
    "R-101": (3, 4, 23, 3),
    "R-152": (3, 8, 36, 3),
}
BASIC_BLOCK_DEPTHS = ("R-18", "R-34")


def _stage_specs(blocks_per_stage, layout):
    """Stage specs for one depth; ``layout`` is C4 (res2-res4, returns res4), C5 or FPN (all four)."""
    if layout == "C4":
        counts = blocks_per_stage[:3]
        returned = (False, False, True)
    elif layout == "C5":
        counts = blocks_per_stage
        returned = (False, False, False, True)
    else:
        counts = blocks_per_stage
        returned = (True, True, True, True)
    return tuple(StageSpec(index, count, ret) for index, (count, ret) in enumerate(zip(counts, returned), 1))


_STAGE_SPECS = {}
for _depth, _counts in BLOCKS_PER_STAGE.items():
    for _suffix, _layout in (("-C4", "C4"), ("-C5", "C5"), ("-FPN", "FPN"), ("-FPN-RETINANET", "FPN")):
        _STAGE_SPECS[_depth + _suffix] = _stage_specs(_counts, _layout)


def depth_of(conv_body):
    """'R-101-FPN-RETINANET' -> 'R-101'."""
    return "-".join(conv_body.split("-")[:2])


def _frozen_bn(channels):
    return FrozenBatchNorm2d(channels)


def _trainable_bn(channels):
    return BatchNorm2d(channels)


def _init_conv(conv):
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")


class _ResidualBlock(nn.Module):
    """Shared parts of both block kinds: the constructor (its signature, the dilation rule and the
    projection shortcut) and the final add + ReLU. Subclasses build their convs in ``_build``."""

    # Basic blocks have no grouped conv, so they reject NUM_GROUPS != 1.
    _supports_groups = True

    def __init__(
        self,
        in_channels,
        bottleneck_channels,
        out_channels,
        num_groups,
        stride_in_1x1,
        stride,
        dilation,
        norm_func,
        dcn_config=None,
    ):
        super().__init__()
        if num_groups != 1 and not self._supports_groups:
            raise ValueError(f"MODEL.RESNETS.NUM_GROUPS={num_groups}: basic blocks (R-18 / R-34) are not grouped")
        if dilation > 1:
            stride = 1  # dilation replaces the downsampling
        # Registered (and initialised) before the convs, so module order and the RNG draws of a
        # seeded build stay those of the original per-class constructors.
        self.downsample = self._make_shortcut(in_channels, out_channels, stride, norm_func)
        self._build(
            in_channels, bottleneck_channels, out_channels, num_groups, stride_in_1x1, stride, dilation, norm_func,
            dcn_config or {},
        )

    def _build(
        self, in_channels, bottleneck_channels, out_channels, num_groups, stride_in_1x1, stride, dilation, norm_func,
        dcn_config,
    ):
        raise NotImplementedError

    def _make_shortcut(self, in_channels, out_channels, stride, norm_func):
        if in_channels == out_channels and stride == 1:
            return None
        downsample = nn.Sequential(
            Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False), norm_func(out_channels)
        )
        _init_conv(downsample[0])
        return downsample

    def _add_shortcut(self, residual, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        # In place, as every ReLU of the blocks: `residual` is the block's own fresh tensor, and
        # neither the add's nor the norm's backward reads it (ReLU's reads its own output).
        residual += shortcut
        return F.relu_(residual)


def _make_3x3(in_channels, out_channels, stride, dilation, num_groups, dcn_config):
    """The block's 3x3 conv: deformable when the stage asks for it."""
    if dcn_config.get("stage_with_dcn", False):
        return DFConv2d(
            in_channels,
            out_channels,
            with_modulated_dcn=dcn_config.get("with_modulated_dcn", False),
            kernel_size=3,
            stride=stride,
            groups=num_groups,
            dilation=dilation,
            deformable_groups=dcn_config.get("deformable_groups", 1),
            bias=False,
        )
    conv = Conv2d(
        in_channels,
        out_channels,
        kernel_size=3,
        stride=stride,
        padding=dilation,
        dilation=dilation,
        groups=num_groups,
        bias=False,
    )
    _init_conv(conv)
    return conv


class Bottleneck(_ResidualBlock):
    """1x1 reduce -> 3x3 (grouped, maybe deformable) -> 1x1 expand, plus shortcut."""

    def _build(
        self, in_channels, bottleneck_channels, out_channels, num_groups, stride_in_1x1, stride, dilation, norm_func,
        dcn_config,
    ):
        # Caffe2 / MSRA weights stride in the 1x1 conv; torchvision's ResNet (v1.5) in the 3x3.
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = Conv2d(in_channels, bottleneck_channels, kernel_size=1, stride=stride_1x1, bias=False)
        self.bn1 = norm_func(bottleneck_channels)
        self.conv2 = _make_3x3(bottleneck_channels, bottleneck_channels, stride_3x3, dilation, num_groups, dcn_config)
        self.bn2 = norm_func(bottleneck_channels)
        self.conv3 = Conv2d(bottleneck_channels, out_channels, kernel_size=1, bias=False)
        self.bn3 = norm_func(out_channels)
        _init_conv(self.conv1)
        _init_conv(self.conv3)

    def forward(self, x):
        out = F.relu_(self.bn1(self.conv1(x)))
        out = F.relu_(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self._add_shortcut(out, x)


class BasicBlock(_ResidualBlock):
    """Two 3x3 convs plus shortcut (R-18 / R-34). The first conv maps to ``bottleneck_channels``
    (NUM_GROUPS x WIDTH_PER_GROUP at res2), which equals ``out_channels`` in the standard nets."""

    _supports_groups = False

    def _build(
        self, in_channels, bottleneck_channels, out_channels, num_groups, stride_in_1x1, stride, dilation, norm_func,
        dcn_config,
    ):
        self.conv1 = _make_3x3(in_channels, bottleneck_channels, stride, dilation, 1, {})
        self.bn1 = norm_func(bottleneck_channels)
        self.conv2 = _make_3x3(bottleneck_channels, out_channels, 1, dilation, 1, dcn_config)
        self.bn2 = norm_func(out_channels)

    def forward(self, x):
        out = F.relu_(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self._add_shortcut(out, x)


def _with_norm(block_class, norm_func):
    """A block class of the maskrcnn-benchmark constructor signature with its normalization fixed."""

    class Block(block_class):
        def __init__(self, in_channels, bottleneck_channels, out_channels, num_groups=1, stride_in_1x1=True,
                     stride=1, dilation=1, dcn_config=None):
            super().__init__(in_channels, bottleneck_channels, out_channels, num_groups, stride_in_1x1, stride,
                             dilation, norm_func, dcn_config)

    return Block


# maskrcnn-benchmark's named block classes (TRANS_FUNC values). Their GroupNorm has the default
# settings; the ResNet body and ResNetHead build their blocks with the settings they are given.
class BottleneckWithFixedBatchNorm(_with_norm(Bottleneck, _frozen_bn)):
    pass


class BottleneckWithGN(_with_norm(Bottleneck, group_norm)):
    pass


class BottleneckWithBatchNorm(_with_norm(Bottleneck, _trainable_bn)):
    pass


class BasicBlockWithFixedBatchNorm(_with_norm(BasicBlock, _frozen_bn)):
    pass


class BasicBlockWithGN(_with_norm(BasicBlock, group_norm)):
    pass


class BasicBlockWithBatchNorm(_with_norm(BasicBlock, _trainable_bn)):
    pass


class BaseStem(nn.Module):
    """7x7 stride-2 conv, norm, ReLU, 3x3 stride-2 max-pool: output stride 4."""

    @configurable
    def __init__(self, out_channels, norm_func):
        super().__init__()
        self.conv1 = Conv2d(3, out_channels, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = norm_func(out_channels)
        self.out_channels = out_channels
        _init_conv(self.conv1)

    @classmethod
    def from_config(cls, cfg, norm_func):
        return {"out_channels": cfg.MODEL.RESNETS.STEM_OUT_CHANNELS, "norm_func": norm_func}

    def forward(self, x):
        x = F.relu_(self.bn1(self.conv1(x)))
        return F.max_pool2d(x, kernel_size=3, stride=2, padding=1)


# maskrcnn-benchmark's named stems (STEM_FUNC values), built from a config.
class StemWithFixedBatchNorm(BaseStem):
    def __init__(self, cfg):
        super().__init__(cfg.MODEL.RESNETS.STEM_OUT_CHANNELS, _norm_func("FixedBatchNorm"))


class StemWithGN(BaseStem):
    def __init__(self, cfg):
        super().__init__(cfg.MODEL.RESNETS.STEM_OUT_CHANNELS, _norm_func("GN", GroupNormSettings.from_config(cfg)))


class StemWithBatchNorm(BaseStem):
    def __init__(self, cfg):
        super().__init__(cfg.MODEL.RESNETS.STEM_OUT_CHANNELS, _norm_func("BatchNorm"))


_TRANSFORMATION_MODULES = {
    "BottleneckWithFixedBatchNorm": BottleneckWithFixedBatchNorm,
    "BottleneckWithGN": BottleneckWithGN,
    "BottleneckWithBatchNorm": BottleneckWithBatchNorm,
    "BasicBlockWithFixedBatchNorm": BasicBlockWithFixedBatchNorm,
    "BasicBlockWithGN": BasicBlockWithGN,
    "BasicBlockWithBatchNorm": BasicBlockWithBatchNorm,
}

_STEM_MODULES = {
    "StemWithFixedBatchNorm": StemWithFixedBatchNorm,
    "StemWithGN": StemWithGN,
    "StemWithBatchNorm": StemWithBatchNorm,
}


def _lookup(table, name, key):
    if name not in table:
        raise KeyError(f"{key}={name!r} is unknown; choose one of {sorted(table)}")
    return table[name]


def _norm_func(kind, gn=None):
    """The normalization named by a TRANS_FUNC / STEM_FUNC suffix; GroupNorm with ``gn`` settings."""
    if kind == "GN":
        return functools.partial(group_norm, gn=gn or GroupNormSettings())
    return {"FixedBatchNorm": _frozen_bn, "BatchNorm": _trainable_bn}[kind]


def _norm_kind(func_name):
    """'BottleneckWithGN' -> 'GN'."""
    return func_name.split("With", 1)[1]


def _block_module_for(trans_func, conv_body, gn):
    """The body's block constructor: ``trans_func`` names the normalization, the depth of
    ``conv_body`` decides basic vs bottleneck blocks."""
    _lookup(_TRANSFORMATION_MODULES, trans_func, "MODEL.RESNETS.TRANS_FUNC")
    basic = depth_of(conv_body) in BASIC_BLOCK_DEPTHS
    if trans_func.startswith("BasicBlock") and not basic:
        raise ValueError(
            f"MODEL.RESNETS.TRANS_FUNC={trans_func!r} builds basic blocks, but MODEL.BACKBONE.CONV_BODY="
            f"{conv_body!r} is a bottleneck ResNet; use a Bottleneck* TRANS_FUNC"
        )
    block_class = BasicBlock if basic else Bottleneck
    return functools.partial(block_class, norm_func=_norm_func(_norm_kind(trans_func), gn))


def _make_stage(block_module, spec, in_channels, res2_out_channels, res2_bottleneck_channels, num_groups,
                stride_in_1x1, first_stride, dilation=1, dcn_config=None):
    """Stage ``spec.index`` (1 = res2) of ``spec.block_count`` blocks; widths double per stage from
    res2's. Returns the stage and its output channels."""
    scale = 2 ** (spec.index - 1)
    out_channels = res2_out_channels * scale
    blocks = []
    stride = first_stride
    for _ in range(spec.block_count):
        blocks.append(block_module(in_channels, res2_bottleneck_channels * scale, out_channels, num_groups,
                                   stride_in_1x1, stride, dilation=dilation, dcn_config=dcn_config))
        stride = 1
        in_channels = out_channels
    return nn.Sequential(*blocks), out_channels


def _dcn_config(stage_with_dcn, with_modulated_dcn, deformable_groups, stage_index):
    stage_with_dcn = tuple(stage_with_dcn)
    if len(stage_with_dcn) != 4:
        raise ValueError(f"MODEL.RESNETS.STAGE_WITH_DCN needs one flag per stage res2-res5, got {stage_with_dcn}")
    return {
        "stage_with_dcn": bool(stage_with_dcn[stage_index - 1]),
        "with_modulated_dcn": with_modulated_dcn,
        "deformable_groups": deformable_groups,
    }


class ResNet(nn.Module):
    """The body: stem + layer1..layer4 (as many as CONV_BODY asks); forward returns the list of the
    feature maps flagged ``return_features``, finest first."""

    @configurable
    def __init__(
        self,
        conv_body,
        trans_func="BottleneckWithFixedBatchNorm",
        stem_func="StemWithFixedBatchNorm",
        num_groups=1,
        width_per_group=64,
        stride_in_1x1=True,
        stem_out_channels=64,
        res2_out_channels=256,
        res5_dilation=1,
        stage_with_dcn=(False, False, False, False),
        with_modulated_dcn=False,
        deformable_groups=1,
        freeze_at=2,
        gn=GroupNormSettings(),
    ):
        super().__init__()
        stage_specs = _lookup(_STAGE_SPECS, conv_body, "MODEL.BACKBONE.CONV_BODY")
        _lookup(_STEM_MODULES, stem_func, "MODEL.RESNETS.STEM_FUNC")
        block_module = _block_module_for(trans_func, conv_body, gn)

        self.stem = BaseStem(stem_out_channels, _norm_func(_norm_kind(stem_func), gn))
        in_channels = stem_out_channels
        stage2_bottleneck_channels = num_groups * width_per_group
        self.stages = []
        self.return_features = {}
        self.out_channels_list = []  # channels of each returned map
        self.feature_strides = []  # and its stride w.r.t. the input
        stride = 4
        for spec in stage_specs:
            name = "layer" + str(spec.index)
            dilation = res5_dilation if spec.index == 4 else 1
            first_stride = 2 if spec.index > 1 and dilation == 1 else 1
            dcn_config = _dcn_config(stage_with_dcn, with_modulated_dcn, deformable_groups, spec.index)
            stage, out_channels = _make_stage(
                block_module, spec, in_channels, res2_out_channels, stage2_bottleneck_channels, num_groups,
                stride_in_1x1, first_stride, dilation, dcn_config,
            )
            self.add_module(name, stage)
            self.stages.append(name)
            self.return_features[name] = spec.return_features
            stride *= first_stride
            if spec.return_features:
                self.out_channels_list.append(out_channels)
                self.feature_strides.append(stride)
            in_channels = out_channels
        self.out_channels = self.out_channels_list[-1]

        self._frozen_modules = []
        self._freeze_backbone(freeze_at)

    @classmethod
    def from_config(cls, cfg, conv_body=None):
        """The body of ``conv_body`` (default MODEL.BACKBONE.CONV_BODY) with MODEL.RESNETS' settings."""
        resnets = cfg.MODEL.RESNETS
        return {
            "conv_body": conv_body or cfg.MODEL.BACKBONE.CONV_BODY,
            "trans_func": resnets.TRANS_FUNC,
            "stem_func": resnets.STEM_FUNC,
            "num_groups": resnets.NUM_GROUPS,
            "width_per_group": resnets.WIDTH_PER_GROUP,
            "stride_in_1x1": resnets.STRIDE_IN_1X1,
            "stem_out_channels": resnets.STEM_OUT_CHANNELS,
            "res2_out_channels": resnets.RES2_OUT_CHANNELS,
            "res5_dilation": resnets.RES5_DILATION,
            "stage_with_dcn": tuple(resnets.STAGE_WITH_DCN),
            "with_modulated_dcn": resnets.WITH_MODULATED_DCN,
            "deformable_groups": resnets.DEFORMABLE_GROUPS,
            "freeze_at": cfg.MODEL.BACKBONE.FREEZE_CONV_BODY_AT,
            "gn": GroupNormSettings.from_config(cfg),
        }

    def _freeze_backbone(self, freeze_at):
        """Freeze the stem (freeze_at >= 1) and res2..res(freeze_at) (freeze_at >= 2); < 1 freezes nothing."""
        if freeze_at > len(self.stages) + 1:
            raise ValueError(
                f"MODEL.BACKBONE.FREEZE_CONV_BODY_AT={freeze_at}, but this body has only the stem and "
                f"{len(self.stages)} stages (max {len(self.stages) + 1})"
            )
        for stage_index in range(max(freeze_at, 0)):
            module = self.stem if stage_index == 0 else getattr(self, "layer" + str(stage_index))
            for param in module.parameters():
                param.requires_grad = False
            self._frozen_modules.append(module)
        self.train(self.training)

    def train(self, mode=True):
        super().train(mode)
        # Trainable-BN statistics in frozen stages must not drift either.
        for module in getattr(self, "_frozen_modules", ()):
            module.eval()
        return self

    def forward(self, x):
        outputs = []
        x = self.stem(x)
        for name in self.stages:
            x = getattr(self, name)(x)
            if self.return_features[name]:
                outputs.append(x)
        return outputs


class ResNetHead(nn.Module):
    """Stages run on pooled RoI features (res5 of C4 detectors).

    ``block_module`` is a ``_TRANSFORMATION_MODULES`` name or a block class; R-18 / R-34 C4 heads
    need a BasicBlock* one (set TRANS_FUNC to e.g. BasicBlockWithFixedBatchNorm for those bodies).
    A *WithGN name normalizes with the ``gn`` settings (MODEL.GROUP_NORM; default 32 groups).
    """

    def __init__(
        self,
        block_module,
        stages,
        num_groups=1,
        width_per_group=64,
        stride_in_1x1=True,
        stride_init=None,
        res2_out_channels=256,
        dilation=1,
        dcn_config=None,
        gn=None,
    ):
        super().__init__()
        if isinstance(block_module, type):
            block_class = block_module
        else:
            _lookup(_TRANSFORMATION_MODULES, block_module, "MODEL.RESNETS.TRANS_FUNC")
            base = BasicBlock if block_module.startswith("BasicBlock") else Bottleneck
            block_class = functools.partial(base, norm_func=_norm_func(_norm_kind(block_module), gn))
        stage2_bottleneck_channels = num_groups * width_per_group
        # The input is the previous stage's output: half the channels of the first head stage.
        in_channels = res2_out_channels * 2 ** (stages[0].index - 2)
        self.stages = []
        for index, spec in enumerate(stages):
            name = "layer" + str(spec.index)
            if index == 0 and stride_init is not None:
                first_stride = stride_init
            else:
                first_stride = 2 if spec.index > 1 else 1
            module, out_channels = _make_stage(
                block_class, spec, in_channels, res2_out_channels, stage2_bottleneck_channels, num_groups,
                stride_in_1x1, first_stride, dilation, dcn_config,
            )
            self.add_module(name, module)
            self.stages.append(name)
            in_channels = out_channels
        self.out_channels = out_channels

    def forward(self, x):
        for name in self.stages:
            x = getattr(self, name)(x)
        return x
