"""PAA inference: ATSS's post-processing with the IoU branch as the quality (score =
sqrt(class probability x predicted IoU)), plus optional score voting (INFERENCE_SCORE_VOTING).

Score voting (PAA paper, Sec. 3.4) replaces each kept box by an average of the same-class boxes
that entered NMS, each weighted by its score x exp(-(1 - IoU)^2 / sigma) with the kept box
(sigma = 0.025), among the boxes whose IoU with it exceeds 0.01 (IoU in the box convention, as
PAA's code takes it); scores are unchanged.
"""
import functools

import torch

from maskrcnn_benchmark.modeling.rpn.atss.inference import make_atss_postprocessor
from maskrcnn_benchmark.structures.box_convention import DEFAULT_BOX_CONVENTION, box_convention

VOTING_SIGMA = 0.025
VOTING_MIN_IOU = 0.01


def score_voting(kept, candidates, sigma=VOTING_SIGMA, convention=DEFAULT_BOX_CONVENTION):
    """Boxes of ``kept`` (BoxList after NMS) refined by voting among ``candidates`` (before NMS)."""
    if len(kept) == 0 or len(candidates) == 0:
        return kept
    # Two empty boxes have IoU 0 (not 0 / 0): no vote between them (the post-processor drops empty
    # boxes before NMS; this keeps the function safe on any input).
    ious = box_convention(convention).pairwise_iou(kept.bbox, candidates.bbox)  # [K, M]
    same_class = kept.get_field("labels")[:, None] == candidates.get_field("labels")[None, :]
    weights = candidates.get_field("scores")[None, :] * torch.exp(-((1.0 - ious) ** 2) / sigma)
    weights = weights * (same_class & (ious > VOTING_MIN_IOU)).to(weights.dtype)
    # A kept box is one of the candidates and votes for itself (IoU 1), unless it is empty: then
    # nothing votes and it stays as it is.
    totals = weights.sum(dim=1, keepdim=True)
    voted = torch.where(totals > 0, (weights @ candidates.bbox) / totals.clamp(min=1e-12), kept.bbox)
    kept.bbox = voted.to(kept.bbox.dtype)
    return kept


def make_paa_postprocessor(config, box_coder):
    voting = functools.partial(score_voting, convention=box_coder.convention)
    refine = voting if config.MODEL.PAA.INFERENCE_SCORE_VOTING else None
    return make_atss_postprocessor(config, box_coder, head_cfg=config.MODEL.PAA, refine=refine)
