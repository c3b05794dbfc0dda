"""The dense head of ATSS and PAA.

Shared over the FPN levels: a classification tower and a box tower (``num_convs`` x conv3x3 + GN +
ReLU, the last conv deformable with ``use_dcn``), then per anchor C class logits, 4 box deltas
(times a learnable per-level scale) and one quality logit predicted from the box tower:
centre-ness for ATSS, IoU for PAA.
"""
from torch import nn

from maskrcnn_benchmark.config.configurable import configurable
from maskrcnn_benchmark.modeling.dense_heads.head import conv_head_config
from maskrcnn_benchmark.modeling.dense_heads.tower import Scale, init_dense_head_, make_tower


class ATSSHead(nn.Module):
    """``forward(features) -> (logits, box_regression, quality)``, each a list over levels."""

    # The quality branch is ``centerness`` in the ATSS code base and ``iou_pred`` in PAA's: their
    # checkpoints load into ``quality_pred`` (utils/model_serialization.py).
    legacy_child_names = {"centerness": "quality_pred", "iou_pred": "quality_pred"}

    @configurable
    def __init__(self, in_channels, num_classes, num_anchors, num_levels, num_convs=4, use_dcn=False,
                 prior_prob=0.01, owner="MODEL.ATSS"):
        super().__init__()
        self.num_classes = num_classes
        self.cls_tower = make_tower(in_channels, num_convs, use_gn=True, use_dcn_last=use_dcn, owner=owner)
        self.bbox_tower = make_tower(in_channels, num_convs, use_gn=True, use_dcn_last=use_dcn, owner=owner)
        self.cls_logits = nn.Conv2d(in_channels, num_anchors * num_classes, 3, padding=1)
        self.bbox_pred = nn.Conv2d(in_channels, num_anchors * 4, 3, padding=1)
        self.quality_pred = nn.Conv2d(in_channels, num_anchors, 3, padding=1)
        self.scales = nn.ModuleList(Scale() for _ in range(num_levels))
        init_dense_head_(self, self.cls_logits, prior_prob)

    @classmethod
    def from_config(cls, head_cfg, in_channels, owner="MODEL.ATSS"):
        """From the head's config group (MODEL.ATSS or MODEL.PAA: the same keys)."""
        return dict(
            conv_head_config(head_cfg, in_channels),
            num_anchors=len(head_cfg.ASPECT_RATIOS) * head_cfg.SCALES_PER_OCTAVE,
            num_levels=len(head_cfg.ANCHOR_STRIDES),
            use_dcn=head_cfg.USE_DCN_IN_TOWER,
            owner=owner,
        )

    def forward(self, features):
        logits, box_regression, quality = [], [], []
        for level, feature in enumerate(features):
            cls_feature = self.cls_tower(feature)
            box_feature = self.bbox_tower(feature)
            logits.append(self.cls_logits(cls_feature))
            box_regression.append(self.scales[level](self.bbox_pred(box_feature)))
            quality.append(self.quality_pred(box_feature))
        return logits, box_regression, quality
