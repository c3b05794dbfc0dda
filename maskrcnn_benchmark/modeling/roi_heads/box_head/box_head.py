"""The box head of Faster/Mask R-CNN: per-RoI features, class scores, box refinements."""
import torch

from maskrcnn_benchmark.modeling.rpn.anchor_generator import anchors_for_image_sizes, make_anchor_generator
from maskrcnn_benchmark.modeling.sampling_free import GuidedLossScaler, softmax_bias_from_counts
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.boxlist_ops import cat_boxlist

from .inference import make_roi_box_post_processor
from .loss import make_roi_box_loss_evaluator
from .roi_box_feature_extractors import make_roi_box_feature_extractor
from .roi_box_predictors import make_roi_box_predictor


class ROIBoxHead(torch.nn.Module):
    """Training returns ``loss_classifier`` (through the stage's guided loss scaler, guided by
    the box regression loss; identity by default) and ``loss_box_reg``; inference returns the
    detections."""

    sampling_free_name = "roi"
    sampling_free_stage = "ROI"

    def __init__(self, cfg, in_channels):
        super(ROIBoxHead, self).__init__()
        self.cfg = cfg.clone()
        self.feature_extractor = make_roi_box_feature_extractor(cfg, in_channels)
        self.predictor = make_roi_box_predictor(cfg, self.feature_extractor.out_channels)
        self.post_processor = make_roi_box_post_processor(cfg)
        self.loss_evaluator = make_roi_box_loss_evaluator(cfg)
        stage_cfg = cfg.MODEL.SAMPLING_FREE.ROI
        self.loss_scaler = GuidedLossScaler(
            "roi",
            stage_cfg.GUIDED,
            fixed_scale=stage_cfg.LOSS_SCALE,
            ratio_warmup_iters=cfg.MODEL.SAMPLING_FREE.RATIO_WARMUP_ITERS,
        )

    def forward(self, features, proposals, targets=None):
        """Returns (per-RoI features, proposals trained on / detections, losses)."""
        if self.training:
            if targets is None:
                raise ValueError("ROIBoxHead: targets must be given in training mode")
            with torch.no_grad():
                proposals = self.loss_evaluator.subsample(proposals, targets)

        x = self.feature_extractor(features, proposals)
        class_logits, box_regression = self.predictor(x)

        if not self.training:
            return x, self.post_processor((class_logits, box_regression), proposals), {}

        loss_classifier, loss_box_reg = self.loss_evaluator([class_logits], [box_regression])
        scaled_classifier, extras = self.loss_scaler(loss_classifier, loss_box_reg)
        losses = {"loss_classifier": scaled_classifier, "loss_box_reg": loss_box_reg}
        losses.update(extras)
        return x, proposals, losses

    # ---- Sampling-Free optimal bias (paper eq. 18-19, softmax form) -----------------------
    @torch.no_grad()
    def count_samples(self, targets, image_sizes):
        """Per-class counts (float64, background at index 0) of the samples this head trains on.

        Proposals only exist after a network forward, so the RPN's anchors (all visible ones)
        plus the ground-truth boxes stand in for them, matched at the RoI thresholds. The proxy
        has far more background than real proposals (which cluster on objects), so the measured
        background frequency is an upper bound of the one seen in training.
        """
        anchor_generator = make_anchor_generator(self.cfg)
        anchors = anchors_for_image_sizes(anchor_generator, image_sizes, self.cfg.DATALOADER.SIZE_DIVISIBILITY)
        num_classes = self.cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES
        counts = torch.zeros(num_classes, dtype=torch.float64)
        for anchors_per_image, target in zip(anchors, targets):
            visible = anchors_per_image[anchors_per_image.get_field("visibility").bool()]
            target = target.convert("xyxy")
            proxy = cat_boxlist(
                [
                    BoxList(visible.bbox, visible.size, mode="xyxy"),
                    BoxList(target.bbox.to(device="cpu", dtype=visible.bbox.dtype), visible.size, mode="xyxy"),
                ]
            )
            labels, _ = self.loss_evaluator.prepare_targets([proxy], [target.to("cpu")])
            valid = labels[0][labels[0] >= 0]
            counts += torch.bincount(valid, minlength=num_classes)[:num_classes].to(torch.float64)
        return counts

    @torch.no_grad()
    def set_bias_from_counts(self, counts):
        """Set the class-score bias so that the initial softmax equals the class frequencies."""
        bias = softmax_bias_from_counts(counts)
        cls_score = self.predictor.cls_score
        if bias.numel() != cls_score.bias.numel():
            raise ValueError(
                "RoI optimal bias: {} class counts for a classifier with {} classes "
                "(MODEL.ROI_BOX_HEAD.NUM_CLASSES)".format(bias.numel(), cls_score.bias.numel())
            )
        cls_score.bias.copy_(bias.to(cls_score.bias.dtype))
        return {"pi": torch.softmax(bias, dim=0).tolist(), "bias": bias.tolist()}

    def classification_layer(self):
        """The class-score layer (its gradient norm is a Sampling-Free diagnostic)."""
        return self.predictor.cls_score


def build_roi_box_head(cfg, in_channels):
    return ROIBoxHead(cfg, in_channels)
