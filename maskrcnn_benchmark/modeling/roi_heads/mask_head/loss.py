"""Mask head loss: per-pixel BCE on the ground-truth class's mask, positive RoIs only."""
import torch
from torch.nn import functional as F

from maskrcnn_benchmark.modeling.matcher import Matcher
from maskrcnn_benchmark.structures.box_convention import (
    DEFAULT_BOX_CONVENTION,
    box_convention,
    box_convention_from_config,
)
from maskrcnn_benchmark.structures.boxlist_ops import boxlist_iou


def project_masks_on_boxes(segmentation_masks, proposals, discretization_size):
    """Each instance's mask cropped to its proposal box and resized to ``M x M`` (float 0/1)."""
    M = discretization_size
    device = proposals.bbox.device
    proposals = proposals.convert("xyxy")
    if len(segmentation_masks) != len(proposals):
        raise ValueError(
            "project_masks_on_boxes: {} masks for {} proposals".format(len(segmentation_masks), len(proposals))
        )
    if len(proposals) == 0:
        return torch.empty((0, M, M), dtype=torch.float32, device=device)
    targets = []
    for mask, box in zip(segmentation_masks, proposals.bbox.detach().cpu()):
        cropped = mask.crop(box.tolist()).resize((M, M))
        targets.append(torch.as_tensor(cropped.get_mask_tensor()).reshape(M, M))
    return torch.stack(targets, dim=0).to(device=device, dtype=torch.float32)


class MaskRCNNLossComputation(object):
    """``proposal_matcher`` matches the positive proposals to the ground truth by their IoU in the
    box ``convention``; their masks are cropped and resized to ``discretization_size``."""

    def __init__(self, proposal_matcher, discretization_size, convention=DEFAULT_BOX_CONVENTION):
        self.proposal_matcher = proposal_matcher
        self.discretization_size = discretization_size
        self.convention = box_convention(convention)

    def match_targets_to_proposals(self, proposal, target):
        match_quality_matrix = boxlist_iou(target, proposal, self.convention)
        matched_idxs = self.proposal_matcher(match_quality_matrix)
        matched = target.copy_with_fields(["labels", "masks"])[matched_idxs.clamp(min=0)]
        matched.add_field("matched_idxs", matched_idxs)
        return matched

    def prepare_targets(self, proposals, targets):
        """Per image: class labels of the positive proposals and their ``M x M`` mask targets."""
        labels, masks = [], []
        for proposals_per_image, targets_per_image in zip(proposals, targets):
            M = self.discretization_size
            if len(targets_per_image) == 0 or len(proposals_per_image) == 0:
                device = proposals_per_image.bbox.device
                labels.append(torch.zeros(0, dtype=torch.int64, device=device))
                masks.append(torch.zeros((0, M, M), dtype=torch.float32, device=device))
                continue
            # The proposals are the box head's positives, so each matches a ground truth; the
            # rows must stay aligned with the mask logits, hence no filtering here.
            matched = self.match_targets_to_proposals(proposals_per_image, targets_per_image)
            labels.append(matched.get_field("labels").to(torch.int64))
            masks.append(project_masks_on_boxes(matched.get_field("masks"), proposals_per_image, M))
        return labels, masks

    def __call__(self, proposals, mask_logits, targets):
        """``proposals``: per image, the positive proposals the logits were computed for."""
        labels, mask_targets = self.prepare_targets(proposals, targets)
        labels = torch.cat(labels, dim=0)
        mask_targets = torch.cat(mask_targets, dim=0)
        if mask_targets.numel() == 0:
            # No positive RoI: a zero that still touches the graph (every parameter gets a grad).
            return mask_logits.sum() * 0
        rows = torch.arange(labels.numel(), device=labels.device)
        return F.binary_cross_entropy_with_logits(mask_logits[rows, labels], mask_targets.to(mask_logits.dtype))


def make_roi_mask_loss_evaluator(cfg):
    matcher = Matcher(
        cfg.MODEL.ROI_HEADS.FG_IOU_THRESHOLD,
        cfg.MODEL.ROI_HEADS.BG_IOU_THRESHOLD,
        allow_low_quality_matches=False,
    )
    return MaskRCNNLossComputation(matcher, cfg.MODEL.ROI_MASK_HEAD.RESOLUTION, box_convention_from_config(cfg))
