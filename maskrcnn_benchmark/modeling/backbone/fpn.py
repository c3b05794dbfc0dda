"""Feature Pyramid Network: top-down pathway with lateral connections, plus extra coarse levels.

Level k of the pyramid is built from input k (1-based, C2 = 1): ``fpn_inner{k}`` is its 1x1 lateral
conv and ``fpn_layer{k}`` the 3x3 output conv. An input whose channel count is given as 0 is
skipped (one-stage detectors start the pyramid at C3, hence their fpn_inner2.. names).
"""
import torch.nn.functional as F
from torch import nn


class FPN(nn.Module):
    def __init__(self, in_channels_list, out_channels, conv_block, top_blocks=None):
        """
        in_channels_list: channels of each input map, finest first; 0 = not part of the pyramid.
        conv_block: ``make_conv(in, out, kernel_size, stride)`` factory (see conv_with_kaiming_uniform).
        top_blocks: optional module adding coarser levels (LastLevelMaxPool / LastLevelP6P7).
        """
        super().__init__()
        self.inner_blocks = []
        self.layer_blocks = []
        self.used_inputs = []  # positions in the input list that feed the pyramid
        for position, in_channels in enumerate(in_channels_list):
            if in_channels == 0:
                continue
            level = position + 1
            inner_name, layer_name = f"fpn_inner{level}", f"fpn_layer{level}"
            self.add_module(inner_name, conv_block(in_channels, out_channels, 1))
            self.add_module(layer_name, conv_block(out_channels, out_channels, 3, 1))
            self.inner_blocks.append(inner_name)
            self.layer_blocks.append(layer_name)
            self.used_inputs.append(position)
        if not self.used_inputs:
            raise ValueError(f"FPN needs at least one input with channels > 0, got in_channels_list={in_channels_list}")
        self.top_blocks = top_blocks
        self.out_channels = out_channels

    def forward(self, x):
        """x: input maps, finest first (as many as in_channels_list). Returns a tuple of maps, finest first."""
        inputs = [x[position] for position in self.used_inputs]
        last_inner = getattr(self, self.inner_blocks[-1])(inputs[-1])
        results = [getattr(self, self.layer_blocks[-1])(last_inner)]
        for feature, inner_name, layer_name in zip(
            reversed(inputs[:-1]), reversed(self.inner_blocks[:-1]), reversed(self.layer_blocks[:-1])
        ):
            lateral = getattr(self, inner_name)(feature)
            # Upsample to the lateral's exact size (equals 2x for even sizes; robust for odd ones).
            top_down = F.interpolate(last_inner, size=lateral.shape[-2:], mode="nearest")
            # In place: the lateral is this loop's own fresh tensor.
            lateral += top_down
            last_inner = lateral
            results.insert(0, getattr(self, layer_name)(last_inner))

        if isinstance(self.top_blocks, LastLevelP6P7):
            results.extend(self.top_blocks(x[-1], results[-1]))
        elif self.top_blocks is not None:
            results.extend(self.top_blocks(results[-1]))
        return tuple(results)


class LastLevelMaxPool(nn.Module):
    """P6 = stride-2 subsampling of P5 (R-CNN pyramids, P2-P6)."""

    def forward(self, x):
        return [F.max_pool2d(x, kernel_size=1, stride=2, padding=0)]


class LastLevelP6P7(nn.Module):
    """P6 and P7 by stride-2 3x3 convs (one-stage pyramids, P3-P7).

    P6 comes from C5 or from P5; by default from P5 exactly when in_channels == out_channels (the
    maskrcnn-benchmark rule), ``use_p5`` states it explicitly (cfg MODEL.RETINANET.USE_C5).
    """

    def __init__(self, in_channels, out_channels, use_p5=None):
        super().__init__()
        self.p6 = nn.Conv2d(in_channels, out_channels, 3, 2, 1)
        self.p7 = nn.Conv2d(out_channels, out_channels, 3, 2, 1)
        for conv in (self.p6, self.p7):
            nn.init.kaiming_uniform_(conv.weight, a=1)
            nn.init.constant_(conv.bias, 0)
        self.use_P5 = in_channels == out_channels if use_p5 is None else use_p5

    def forward(self, c5, p5):
        source = p5 if self.use_P5 else c5
        p6 = self.p6(source)
        p7 = self.p7(F.relu(p6))
        return [p6, p7]
