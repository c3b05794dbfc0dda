"""The conv parts every dense head shares: towers, the per-level scale, the initialisation.

Module layouts (and so checkpoint keys) are those of maskrcnn-benchmark's RetinaNet and of the
public FCOS / ATSS / PAA heads: a tower is ``Sequential(conv, [GroupNorm,] ReLU, ...)``, a level
scale holds one parameter named ``scale``.
"""
import torch
from torch import nn

from maskrcnn_benchmark.modeling.backbone.deform_conv import DFConv2d
from maskrcnn_benchmark.modeling.sampling_free import prior_to_bias

# GroupNorm groups of the GN towers (FCOS, ATSS, PAA), fixed as in their public heads
TOWER_GN_GROUPS = 32


def make_tower(channels, num_convs, use_gn=False, use_dcn_last=False, owner="dense head"):
    """``num_convs`` x (3x3 conv [+ GroupNorm(32)] + ReLU) at constant width; with ``use_dcn_last``
    the last conv is a modulated deformable one (where the tower's receptive field is largest,
    as in ATSS). ``owner`` names the config group in errors."""
    if use_gn and channels % TOWER_GN_GROUPS:
        raise ValueError(
            f"{owner}: the tower's GroupNorm({TOWER_GN_GROUPS}, C) needs C, the FPN width "
            f"(MODEL.RESNETS.BACKBONE_OUT_CHANNELS), to be a multiple of {TOWER_GN_GROUPS}, got {channels}"
        )
    layers = []
    for index in range(num_convs):
        if use_dcn_last and index == num_convs - 1:
            layers.append(DFConv2d(channels, channels, with_modulated_dcn=True, kernel_size=3, bias=True))
        else:
            layers.append(nn.Conv2d(channels, channels, 3, padding=1))
        if use_gn:
            layers.append(nn.GroupNorm(TOWER_GN_GROUPS, channels))
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class Scale(nn.Module):
    """A learnable scalar per pyramid level, so one shared regressor fits every stride."""

    def __init__(self, init_value=1.0):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(float(init_value)))

    def forward(self, x):
        return x * self.scale


def init_dense_head_(head, classifier, prior_prob, std=0.01):
    """Every conv of ``head`` to normal(0, ``std``) weights and zero bias, in module order (a
    seeded build is reproducible); the offset convs of deformable convs keep their zeros (the
    regular grid). Then the ``classifier`` bias so that every initial probability is ``prior_prob``
    (the "optimal" bias init of Sampling-Free overwrites it later)."""
    offset_convs = {id(m.offset) for m in head.modules() if isinstance(m, DFConv2d)}
    for module in head.modules():
        if isinstance(module, DFConv2d):
            module = module.conv
        elif not isinstance(module, nn.Conv2d) or id(module) in offset_convs:
            continue
        nn.init.normal_(module.weight, std=std)
        if module.bias is not None:
            nn.init.constant_(module.bias, 0)
    nn.init.constant_(classifier.bias, float(prior_to_bias(prior_prob)))
