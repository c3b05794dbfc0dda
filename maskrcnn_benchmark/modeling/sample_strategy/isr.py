"""ISR, the importance-based sample reweighting of PISA (Cao et al., "Prime Sample Attention in
Object Detection", CVPR 2020), for the RoI head; its CARL loss is not included.

Both halves rank samples by a *hierarchical local rank* (HLR): samples are grouped locally (around
one ground-truth box, or one cluster of overlapping predictions), ranked inside their group, and
then all samples are ordered by that local rank first and their value (IoU or score) second, so
the best sample of every group comes before the second best of any. A rank r becomes the weight
((1 - r / n_max) (1 - bias) + bias) ** k, and the weights are rescaled so that the weighted loss
sum equals the unweighted one (ISR moves attention between samples, not the loss scale).

- "isr_p" (soft): IoU-HLR reweighting of the positives' classification loss. Positives are grouped
  by their matched ground truth, the value is the IoU of the predicted (regressed) box with it, the
  ranking runs per ground-truth class over the batch and n_max is the largest number of positives
  of one class. Options ``K`` (2) and ``BIAS`` (0). Needs the RoI head's context
  (``TrainedSamples``); negatives keep the weight the hard strategy gave them.
- "isr_n" (hard): Score-HLR sampling of negatives. Positives are drawn as by "biased"; among the
  negatives whose best foreground score exceeds ``SCORE_THRESH`` (0.05), the predicted box of the
  best class is clustered greedily as by NMS (a cluster is a kept box and the boxes of the same
  predicted class it suppresses at IoU > ``IOU_THRESH``, 0.5), and the highest-HLR negatives fill
  the budget, any shortfall drawn uniformly from the negatives below the threshold. The chosen
  negatives are weighted by their rank with ``K`` (0.5) and ``BIAS`` (0), n_max = max(budget,
  number above the threshold), the randomly drawn ones getting the lowest HLR weight; the weights
  are rescaled to keep the chosen negatives' classification loss sum.

Defaults are mmdetection's PISA Faster R-CNN settings (ISR-P k = 2, bias = 0; ScoreHLRSampler k =
0.5, bias = 0, score threshold 0.05, IoU threshold 0.5). mmdetection clusters the negatives'
predictions class-agnostically; here a cluster holds one predicted class, as the ranking of the
positives is per class.
"""
import torch

from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.boxlist_ops import boxlist_iou

from .base import HARD_STRATEGIES, SOFT_STRATEGIES, SOFTMAX, TrainedSamples, built_from_options, check_range
from .biased import BudgetedSampling, random_subset
from .cross_entropy import CrossEntropy

ISR_P_DEFAULTS = {"K": 2.0, "BIAS": 0.0}
ISR_N_DEFAULTS = {"K": 0.5, "BIAS": 0.0, "SCORE_THRESH": 0.05, "IOU_THRESH": 0.5}


def _stable_order(*keys):
    """Indices sorting by ``keys[0]`` first, then ``keys[1]``, ...; all ascending, ties kept in
    index order."""
    order = torch.arange(keys[0].numel(), device=keys[0].device)
    for key in reversed(keys):
        order = order[torch.sort(key[order], stable=True).indices]
    return order


def _rank_within(sorted_groups):
    """Position of each element inside its run of equal values of ``sorted_groups``."""
    positions = torch.arange(sorted_groups.numel(), device=sorted_groups.device)
    starts = torch.ones_like(sorted_groups, dtype=torch.bool)
    starts[1:] = sorted_groups[1:] != sorted_groups[:-1]
    run_start = torch.cummax(torch.where(starts, positions, torch.zeros_like(positions)), dim=0).values
    return positions - run_start


def hierarchical_local_rank(values, groups, classes=None):
    """HLR of each sample (0 = most important): ``values`` (higher is better) ranked inside each
    of the ``groups`` (int64 ids), then, within each of the ``classes`` (all one class if None),
    samples ordered by (local rank, -value)."""
    if classes is None:
        classes = torch.zeros_like(groups)
    order = _stable_order(groups, -values)
    local = torch.empty_like(groups)
    local[order] = _rank_within(groups[order])
    order = _stable_order(classes, local, -values)
    rank = torch.empty_like(groups)
    rank[order] = _rank_within(classes[order])
    return rank


def rank_weights(rank, n_max, k, bias):
    """((1 - r / n_max) (1 - bias) + bias) ** k."""
    return ((1.0 - rank.float() / n_max) * (1.0 - bias) + bias) ** k


def loss_preserving(weights, losses, base_weights=None):
    """``weights`` rescaled so that sum(weights * losses) = sum(base_weights * losses)."""
    base = losses if base_weights is None else base_weights * losses
    new = (weights * losses).sum()
    return weights * (base.sum() / new) if new > 0 else weights


def _pairwise_iou(boxes):
    """The IoU matrix of ``boxes`` (N x 4, x1 y1 x2 y2) with themselves."""
    boxlist = BoxList(boxes, (1, 1), mode="xyxy")  # the image size plays no part in the IoU
    return boxlist_iou(boxlist, boxlist)


def nms_clusters(boxes, scores, classes, iou_threshold):
    """Cluster id of each box: greedily, the highest-scoring box not yet clustered opens a cluster
    and takes every unclustered box of its class with IoU > ``iou_threshold`` with it (NMS, where
    a suppressed box joins the box that suppressed it)."""
    joins = (_pairwise_iou(boxes) > iou_threshold) & (classes[:, None] == classes[None, :])
    joins = joins.cpu()  # a sequential loop: on the host, without a device sync per box
    cluster = torch.full((len(boxes),), -1, dtype=torch.int64)
    for head in torch.argsort(scores, descending=True, stable=True).tolist():
        if cluster[head] >= 0:
            continue
        members = joins[head] & (cluster < 0)
        members[head] = True
        cluster[members] = head
    return cluster.to(classes.device)


@SOFT_STRATEGIES.register("isr_p")
class IoUHierarchicalReweighting(CrossEntropy):
    """Softmax cross-entropy whose positives are reweighted by their IoU-HLR (module docstring)."""

    kinds = (SOFTMAX,)

    def __init__(self, kind=SOFTMAX, k=2.0, bias=0.0):
        super().__init__(kind)
        self.k = check_range("isr_p", "K", k, 0.0, float("inf"))
        self.bias = check_range("isr_p", "BIAS", bias, 0.0, 1.0)

    @classmethod
    def from_settings(cls, settings, kind):
        options = settings.options("SOFT", ISR_P_DEFAULTS)
        return built_from_options(settings, "SOFT", lambda: cls(kind, options["K"], options["BIAS"]))

    def positive_weights(self, labels, context):
        """IoU-HLR weight of each positive (``labels > 0``), before the loss-preserving rescale."""
        positive = labels > 0
        classes = labels[positive]
        ious = context.predicted_ious()[positive]
        rank = hierarchical_local_rank(ious, context.ground_truth[positive], classes)
        n_max = int(torch.bincount(classes).max())
        return rank_weights(rank, n_max, self.k, self.bias)

    def forward(self, logits, labels, weights=None, context=None):
        if not isinstance(context, TrainedSamples):
            raise ValueError("isr_p needs the RoI box head's context (TrainedSamples: the trained samples' "
                             f"ground truth and predicted IoUs), got {type(context).__name__}")
        losses = self.per_sample(logits, labels)
        weights = torch.ones_like(losses) if weights is None else weights.to(losses.dtype)
        positive = labels > 0
        if bool(positive.any()):
            with torch.no_grad():
                importance = self.positive_weights(labels, context)
                weights = weights.clone()
                weights[positive] = loss_preserving(
                    weights[positive] * importance, losses.detach()[positive], weights[positive]
                )
        return (losses * weights).sum()

    def extra_repr(self):
        return f"kind={self.kind}, k={self.k}, bias={self.bias}"


@HARD_STRATEGIES.register("isr_n")
class ScoreHierarchicalSampling(BudgetedSampling):
    """Score-HLR sampling and weighting of negatives within the biased budget (module docstring)."""

    option_defaults = ISR_N_DEFAULTS

    def __init__(self, batch_size_per_image, positive_fraction, k=0.5, bias=0.0, score_thresh=0.05,
                 iou_thresh=0.5):
        super().__init__(batch_size_per_image, positive_fraction)
        self.k = check_range("isr_n", "K", k, 0.0, float("inf"))
        self.bias = check_range("isr_n", "BIAS", bias, 0.0, 1.0)
        self.score_thresh = check_range("isr_n", "SCORE_THRESH", score_thresh, 0.0, 1.0)
        self.iou_thresh = check_range("isr_n", "IOU_THRESH", iou_thresh, 0.0, 1.0)

    def image_inputs(self, candidates):
        """Per image: best foreground score and class, that class' predicted box, and the
        classification loss of every candidate."""
        scores = candidates.require("scores", "isr_n")()
        best = [image_scores[:, 1:].max(dim=1) for image_scores in scores]
        classes = [b.indices + 1 for b in best]
        boxes = candidates.require("predicted_boxes", "isr_n")(classes)
        losses = candidates.require("classification_losses", "isr_n")()
        return [dict(score=b.values, cls=c, boxes=x, loss=l) for b, c, x, l in zip(best, classes, boxes, losses)]

    def choose_negatives(self, indices, count, inputs):
        if count == 0:
            return indices[:0], None
        scores = inputs["score"][indices]
        above = scores > self.score_thresh
        valid, invalid = indices[above], indices[~above]
        if valid.numel() == 0:
            return random_subset(indices, count), None
        clusters = nms_clusters(inputs["boxes"][valid], scores[above], inputs["cls"][valid], self.iou_thresh)
        rank = hierarchical_local_rank(scores[above], clusters)
        by_rank = torch.argsort(rank)
        num_ranked = min(valid.numel(), count)
        ranked = valid[by_rank[:num_ranked]]
        ranked_weights = rank_weights(rank[by_rank[:num_ranked]], max(count, valid.numel()), self.k, self.bias)
        drawn = random_subset(invalid, count - num_ranked)  # below the score threshold
        weights = torch.cat([ranked_weights, ranked_weights.min().expand(drawn.numel())])
        chosen = torch.cat([ranked, drawn])
        return chosen, loss_preserving(weights, inputs["loss"][chosen])
