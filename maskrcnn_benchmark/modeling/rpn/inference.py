"""Turn RPN outputs into object proposals: top-k per level, decode, clip, NMS, top-k overall.

How many proposals an image gets in training: per level at most ``POST_NMS_TOP_N_TRAIN`` survive
NMS; over the levels, ``FPN_POST_NMS_TOP_N_TRAIN`` are kept PER IMAGE when
``FPN_POST_NMS_PER_BATCH`` is False, but per BATCH OF ONE PROCESS when it is True
(maskrcnn-benchmark's default): there an image gets ``FPN_POST_NMS_TOP_N_TRAIN / (images per
process)`` on average, so the count changes with the number of GPUs. The paper trained 16 images
on 8 GPUs with 2000 per process, i.e. 1000 proposals per image; its Sampling-Free configs, which
train every proposal, keep that per-image count at any GPU count (per image, 1000).

``InitialProposals`` gives the proposals an untrained RPN makes, without a network forward: what
the RoI head counts its samples on for the optimal bias.
"""
import torch

from maskrcnn_benchmark.modeling.box_coder import BoxCoder
from maskrcnn_benchmark.modeling.rpn.anchor_generator import image_grid_sizes, make_anchor_generator
from maskrcnn_benchmark.modeling.rpn.utils import permute_and_flatten
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.box_convention import (
    DEFAULT_BOX_CONVENTION,
    box_convention,
    box_convention_from_config,
)
from maskrcnn_benchmark.structures.boxlist_ops import boxlist_nms, cat_boxlist, remove_empty_boxes, remove_small_boxes


class RPNPostProcessor(torch.nn.Module):
    """Selects proposals from the anchors' objectness and regressions.

    Per level: the ``pre_nms_top_n`` most object-like anchors are decoded, clipped, filtered
    (no area left, or a side below ``min_size``) and reduced by NMS to ``post_nms_top_n``. With
    several levels the survivors of all levels compete for ``fpn_post_nms_top_n`` places, over the
    whole batch when ``fpn_post_nms_per_batch`` (maskrcnn-benchmark's training behaviour) or per
    image otherwise.
    In training the ground-truth boxes are appended to the proposals. Widths, clipping and NMS
    follow the box ``convention``.
    """

    def __init__(
        self,
        pre_nms_top_n,
        post_nms_top_n,
        nms_thresh,
        min_size,
        box_coder=None,
        fpn_post_nms_top_n=None,
        fpn_post_nms_per_batch=True,
        convention=DEFAULT_BOX_CONVENTION,
    ):
        super(RPNPostProcessor, self).__init__()
        self.pre_nms_top_n = pre_nms_top_n
        self.post_nms_top_n = post_nms_top_n
        self.nms_thresh = nms_thresh
        self.min_size = min_size
        self.convention = box_convention(convention)
        self.box_coder = box_coder if box_coder is not None else BoxCoder((1.0, 1.0, 1.0, 1.0), convention=convention)
        self.fpn_post_nms_top_n = post_nms_top_n if fpn_post_nms_top_n is None else fpn_post_nms_top_n
        self.fpn_post_nms_per_batch = fpn_post_nms_per_batch

    def add_gt_proposals(self, proposals, targets):
        """Append each image's ground-truth boxes (objectness 1) to its proposals."""
        with_gt = []
        for proposal, target in zip(proposals, targets):
            gt_box = BoxList(target.convert("xyxy").bbox.to(proposal.bbox.dtype), proposal.size, mode="xyxy")
            gt_box.add_field(
                "objectness", torch.ones(len(gt_box), dtype=proposal.bbox.dtype, device=proposal.bbox.device)
            )
            with_gt.append(cat_boxlist([proposal, gt_box]))
        return with_gt

    def forward_for_single_feature_map(self, anchors, objectness, box_regression):
        """``anchors``: per image BoxList of this level; ``objectness``: ``N x A x H x W``."""
        N, A, H, W = objectness.shape
        objectness = permute_and_flatten(objectness, N, A, 1, H, W).view(N, -1).sigmoid()
        box_regression = permute_and_flatten(box_regression, N, A, 4, H, W)

        num_anchors = A * H * W
        top_n = min(self.pre_nms_top_n, num_anchors)
        objectness, top_idx = objectness.topk(top_n, dim=1, sorted=True)
        batch_idx = torch.arange(N, device=objectness.device)[:, None]
        box_regression = box_regression[batch_idx, top_idx]
        concat_anchors = torch.stack([a.bbox for a in anchors], dim=0)[batch_idx, top_idx]

        proposals = self.box_coder.decode(box_regression.reshape(-1, 4), concat_anchors.reshape(-1, 4))
        proposals = proposals.view(N, -1, 4)

        result = []
        for boxes, scores, anchors_per_image in zip(proposals, objectness, anchors):
            boxlist = BoxList(boxes, anchors_per_image.size, mode="xyxy")
            boxlist.add_field("objectness", scores)
            # Boxes clipped to nothing go: identical empty boxes have IoU 0 / 0 and survive NMS.
            boxlist = boxlist.clip_to_image(remove_empty=False, convention=self.convention)
            boxlist = remove_empty_boxes(boxlist, self.convention)
            boxlist = remove_small_boxes(boxlist, self.min_size, self.convention)
            boxlist = boxlist_nms(
                boxlist, self.nms_thresh, max_proposals=self.post_nms_top_n, score_field="objectness",
                convention=self.convention,
            )
            result.append(boxlist)
        return result

    def forward(self, anchors, objectness, box_regression, targets=None):
        """``anchors``: per image, per level BoxLists; returns per image proposal BoxLists."""
        per_level = []
        anchors_by_level = list(zip(*anchors))
        for level_anchors, level_objectness, level_regression in zip(
            anchors_by_level, objectness, box_regression
        ):
            per_level.append(
                self.forward_for_single_feature_map(level_anchors, level_objectness, level_regression)
            )
        boxlists = [cat_boxlist(list(per_image)) for per_image in zip(*per_level)]
        if len(per_level) > 1:
            boxlists = self.select_over_all_levels(boxlists)

        if self.training and targets is not None:
            boxlists = self.add_gt_proposals(boxlists, targets)
        return boxlists

    def select_over_all_levels(self, boxlists):
        if self.training and self.fpn_post_nms_per_batch:
            objectness = torch.cat([b.get_field("objectness") for b in boxlists], dim=0)
            top_n = min(self.fpn_post_nms_top_n, len(objectness))
            keep = torch.zeros_like(objectness, dtype=torch.bool)
            if top_n > 0:
                keep[objectness.topk(top_n, dim=0, sorted=True)[1]] = True
            kept = []
            for boxlist, keep_per_image in zip(boxlists, keep.split([len(b) for b in boxlists])):
                kept.append(boxlist[keep_per_image])
            return kept

        kept = []
        for boxlist in boxlists:
            objectness = boxlist.get_field("objectness")
            top_n = min(self.fpn_post_nms_top_n, len(boxlist))
            kept.append(boxlist[objectness.topk(top_n, dim=0, sorted=True)[1]])
        return kept


def proposals_per_image_in_training(rpn_config, images_per_process):
    """The ``fpn_post_nms_top_n`` one image gets in training, with ``images_per_process`` images in
    each process's batch (see the module docstring)."""
    top_n = rpn_config.FPN_POST_NMS_TOP_N_TRAIN
    if rpn_config.FPN_POST_NMS_PER_BATCH:
        top_n = max(top_n // max(int(images_per_process), 1), 1)
    return top_n


class InitialProposals(torch.nn.Module):
    """The training proposals an untrained RPN makes for one image, without a network forward.

    At initialisation the objectness conv gives (nearly) the same score everywhere and the
    regression nearly zero: every proposal is its anchor and the proposals kept are a random
    subset of the anchors. This runs the RPN's own training post-processor (``post_processor``:
    pre-NMS top-N per level, clipping, minimum size, NMS, post-NMS top-N, the top-N over levels,
    the ground truth appended) on every anchor with one constant score plus a seeded random
    tie-break far below any real score difference, and zero regressions. ``anchor_generator`` and
    ``size_divisibility``: the RPN's anchors as the batched image sees them. Deterministic: the same
    image size and boxes give the same proposals.
    """

    def __init__(self, anchor_generator, post_processor, size_divisibility=0, seed=0):
        super().__init__()
        self.anchor_generator = anchor_generator
        self.post_processor = post_processor
        self.size_divisibility = size_divisibility
        self.seed = seed

    @torch.no_grad()
    def forward(self, target, image_size):
        """BoxList of the proposals (ground truth last) for an image of ``image_size`` (h, w)."""
        grid = image_grid_sizes(image_size, self.size_divisibility, self.anchor_generator.strides)
        (anchors,) = self.anchor_generator.anchors_for_grid(grid, [tuple(image_size)])
        generator = torch.Generator().manual_seed(self.seed)
        per_anchor = self.anchor_generator.num_anchors_per_location()
        objectness, regression = [], []
        for (height, width), num in zip(grid, per_anchor):
            tie_break = torch.rand(1, num, height, width, generator=generator) * 1e-3
            objectness.append(tie_break.to(anchors[0].bbox.device))
            regression.append(anchors[0].bbox.new_zeros(1, 4 * num, height, width))
        was_training = self.post_processor.training
        self.post_processor.train()
        try:
            (proposals,) = self.post_processor([anchors], objectness, regression, [target])
        finally:
            self.post_processor.train(was_training)
        return proposals


def make_initial_proposals(config, images_per_process):
    """``InitialProposals`` of ``config``'s RPN, keeping the per-image count training has with
    ``images_per_process`` images in each process's batch."""
    box_coder = BoxCoder(weights=(1.0, 1.0, 1.0, 1.0), convention=box_convention_from_config(config))
    post_processor = make_rpn_postprocessor(config, box_coder, is_train=True)
    post_processor.fpn_post_nms_top_n = proposals_per_image_in_training(config.MODEL.RPN, images_per_process)
    post_processor.fpn_post_nms_per_batch = False
    return InitialProposals(make_anchor_generator(config), post_processor, config.DATALOADER.SIZE_DIVISIBILITY)


def make_rpn_postprocessor(config, rpn_box_coder, is_train):
    rpn = config.MODEL.RPN
    if is_train:
        pre_nms_top_n, post_nms_top_n = rpn.PRE_NMS_TOP_N_TRAIN, rpn.POST_NMS_TOP_N_TRAIN
        fpn_post_nms_top_n = rpn.FPN_POST_NMS_TOP_N_TRAIN
    else:
        pre_nms_top_n, post_nms_top_n = rpn.PRE_NMS_TOP_N_TEST, rpn.POST_NMS_TOP_N_TEST
        fpn_post_nms_top_n = rpn.FPN_POST_NMS_TOP_N_TEST
    return RPNPostProcessor(
        pre_nms_top_n=pre_nms_top_n,
        post_nms_top_n=post_nms_top_n,
        nms_thresh=rpn.NMS_THRESH,
        min_size=rpn.MIN_SIZE,
        box_coder=rpn_box_coder,
        fpn_post_nms_top_n=fpn_post_nms_top_n,
        fpn_post_nms_per_batch=rpn.FPN_POST_NMS_PER_BATCH,
        convention=box_convention_from_config(config),
    )
