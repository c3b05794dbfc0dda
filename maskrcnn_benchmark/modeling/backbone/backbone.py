"""build_backbone(cfg): the ResNet body (+ FPN) named by MODEL.BACKBONE.CONV_BODY.

Registered names, for every depth in R-18, R-34, R-50, R-101, R-152 (ResNeXt = the same names
with MODEL.RESNETS.NUM_GROUPS > 1):
- ``<depth>-C4`` / ``<depth>-C5``: the body alone, one map at stride 16 / 32.
- ``<depth>-FPN``: P2-P6 for two-stage detectors.
- ``<depth>-FPN-RETINANET``: P3-P7 for the dense detectors (RetinaNet, FCOS, ATSS, PAA).
- ``<depth>-FPN-RETINANET-VOC``: P4-P7, the Sampling-Free authors' RetinaNet for PASCAL VOC (no P3).
Each registered builder builds its own name's layout (``registry.BACKBONES[name](cfg)`` reads the
widths and norms from ``cfg``, not which body to build). The returned module's ``out_channels`` is
the channel count of every output map.
"""
import functools
from collections import OrderedDict

from torch import nn

from maskrcnn_benchmark.modeling import registry
from maskrcnn_benchmark.modeling.make_layers import GroupNormSettings, conv_with_kaiming_uniform
from maskrcnn_benchmark.modeling.utils import registered

from . import fpn as fpn_module
from . import resnet


def build_resnet_backbone(cfg, conv_body=None):
    body = resnet.ResNet(cfg, conv_body)
    model = nn.Sequential(OrderedDict([("body", body)]))
    model.out_channels = body.out_channels
    return model


def _fpn_body(cfg, conv_body):
    """The ResNet body under an FPN, which needs stride-32 res5."""
    conv_body = conv_body or cfg.MODEL.BACKBONE.CONV_BODY
    if cfg.MODEL.RESNETS.RES5_DILATION != 1:
        raise ValueError(
            f"MODEL.RESNETS.RES5_DILATION={cfg.MODEL.RESNETS.RES5_DILATION}: an FPN body "
            f"({conv_body}) needs stride-32 res5, so the dilation must be 1"
        )
    return resnet.ResNet(cfg, conv_body)


def _make_fpn_conv(cfg):
    gn = GroupNormSettings.from_config(cfg)
    return conv_with_kaiming_uniform(cfg.MODEL.FPN.USE_GN, cfg.MODEL.FPN.USE_RELU, gn=gn)


def _with_fpn(body, fpn, out_channels):
    model = nn.Sequential(OrderedDict([("body", body), ("fpn", fpn)]))
    model.out_channels = out_channels
    return model


def build_resnet_fpn_backbone(cfg, conv_body=None):
    """C2-C5 -> P2-P5, plus P6 by max-pool."""
    body = _fpn_body(cfg, conv_body)
    out_channels = cfg.MODEL.RESNETS.BACKBONE_OUT_CHANNELS
    fpn = fpn_module.FPN(
        in_channels_list=body.out_channels_list,
        out_channels=out_channels,
        conv_block=_make_fpn_conv(cfg),
        top_blocks=fpn_module.LastLevelMaxPool(),
    )
    return _with_fpn(body, fpn, out_channels)


def build_resnet_fpn_p3p7_backbone(cfg, conv_body=None, first_level=3):
    """C3-C5 -> P3-P5, plus P6 and P7 by strided convs from C5 (RETINANET.USE_C5) or P5.
    ``first_level`` 4: C4-C5 -> P4-P5 (then P6, P7)."""
    body = _fpn_body(cfg, conv_body)
    out_channels = cfg.MODEL.RESNETS.BACKBONE_OUT_CHANNELS
    use_c5 = cfg.MODEL.RETINANET.USE_C5
    c5_channels = body.out_channels_list[-1]
    skipped = first_level - 2  # C2 is the body's first output
    fpn = fpn_module.FPN(
        in_channels_list=[0] * skipped + body.out_channels_list[skipped:],
        out_channels=out_channels,
        conv_block=_make_fpn_conv(cfg),
        top_blocks=fpn_module.LastLevelP6P7(
            c5_channels if use_c5 else out_channels, out_channels, use_p5=not use_c5
        ),
    )
    return _with_fpn(body, fpn, out_channels)


_BUILDER_FOR_SUFFIX = {
    "-C4": build_resnet_backbone,
    "-C5": build_resnet_backbone,
    "-FPN": build_resnet_fpn_backbone,
    "-FPN-RETINANET": build_resnet_fpn_p3p7_backbone,
    "-FPN-RETINANET-VOC": functools.partial(build_resnet_fpn_p3p7_backbone, first_level=4),
}
# The ResNet body of a name (resnet.py's stage specs): the VOC pyramid's is the one-stage one.
_BODY_OF_SUFFIX = {"-FPN-RETINANET-VOC": "-FPN-RETINANET"}
for _depth in ("R-18", "R-34", "R-50", "R-101", "R-152"):
    for _suffix, _builder in _BUILDER_FOR_SUFFIX.items():
        _body = _depth + _BODY_OF_SUFFIX.get(_suffix, _suffix)
        registry.BACKBONES.register(_depth + _suffix, functools.partial(_builder, conv_body=_body))


def build_backbone(cfg):
    return registered(registry.BACKBONES, cfg.MODEL.BACKBONE.CONV_BODY, "MODEL.BACKBONE.CONV_BODY")(cfg)
