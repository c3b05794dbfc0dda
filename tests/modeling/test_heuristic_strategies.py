"""The Table VIII heuristics (modeling/sample_strategy: ohem, iou_balanced, ghm_c, isr_p, isr_n)
against computations written independently here: hand-built histograms, sorted losses, per-bin
counts, hand-ranked hierarchical local ranks, torchvision's NMS."""
import math

import pytest
import torch
from torch.nn import functional as F
from torchvision.ops import batched_nms

from maskrcnn_benchmark.modeling.dense_heads.classification import dense_classification_loss
from maskrcnn_benchmark.modeling.sample_strategy import (
    AllSamples,
    Candidates,
    GradientHarmonizedClassification,
    IoUBalancedNegativeSampling,
    IoUHierarchicalReweighting,
    OnlineHardExampleMining,
    ScoreHierarchicalSampling,
    TrainedSamples,
    build_hard_strategy,
    build_soft_strategy,
)
from maskrcnn_benchmark.modeling.sample_strategy.isr import hierarchical_local_rank, nms_clusters
from maskrcnn_benchmark.modeling.sampling_free import StageSettings
from maskrcnn_benchmark.structures.box_convention import MASKRCNN_BENCHMARK


def labels(*values):
    return torch.tensor(values, dtype=torch.int64)


def roi_settings(hard="biased", soft="ce", hard_options=(), soft_options=(), budget=512):
    return StageSettings(stage="ROI", hard=hard, soft=soft, batch_size_per_image=budget, positive_fraction=0.25,
                         hard_options=tuple(hard_options), soft_options=tuple(soft_options))


# ---------------------------------------------------------------- GHM-C
def ghm_by_hand(logits, target_labels, bins, momentum, acc):
    """GHM-C written out with loops over entries and bins: returns (loss, new acc)."""
    num_classes = logits.shape[1]
    edges = [i / bins for i in range(bins + 1)]
    edges[-1] += 1e-6
    entries = []  # (g, bce) of every valid (sample, class)
    for row, label in zip(logits.tolist(), target_labels.tolist()):
        if label < 0:
            continue
        for c in range(num_classes):
            target = 1.0 if label == c + 1 else 0.0
            p = 1.0 / (1.0 + math.exp(-row[c]))
            bce = -(target * math.log(p) + (1 - target) * math.log(1 - p))
            entries.append((abs(p - target), bce))
    total = len(entries)
    acc = list(acc)
    weights_per_bin, non_empty = {}, 0
    for b in range(bins):
        in_bin = [e for e in entries if edges[b] <= e[0] < edges[b + 1]]
        if not in_bin:
            continue
        non_empty += 1
        if momentum > 0:
            acc[b] = momentum * acc[b] + (1 - momentum) * len(in_bin)
            weights_per_bin[b] = total / acc[b]
        else:
            weights_per_bin[b] = total / len(in_bin)
    loss = 0.0
    for g, bce in entries:
        b = next(i for i in range(bins) if edges[i] <= g < edges[i + 1])
        loss += weights_per_bin[b] / non_empty * bce
    return loss / total, acc


def test_ghm_c_matches_a_hand_built_histogram_with_its_moving_average_over_iterations():
    torch.manual_seed(0)
    ghm = GradientHarmonizedClassification(bins=5, momentum=0.75).train()
    acc = [0.0] * 5
    for step in range(3):
        logits = torch.randn(12, 3) * 3
        target_labels = torch.randint(-1, 4, (12,))
        expected, acc = ghm_by_hand(logits, target_labels, 5, 0.75, acc)
        loss = ghm(logits, target_labels)
        assert loss.item() == pytest.approx(expected, rel=1e-5), step
        torch.testing.assert_close(ghm.acc_sum, torch.tensor(acc, dtype=torch.float32))
    # every entry right (g ~ 0): only the first bin is present; the others keep their average
    # (the released update rule; the paper's would decay them)
    target_labels = torch.randint(0, 4, (12,))
    confident = torch.where(F.one_hot(target_labels, 4)[:, 1:].bool(), 20.0, -20.0)
    before = ghm.acc_sum.clone()
    ghm(confident, target_labels)
    assert ghm.acc_sum[0] == pytest.approx(0.75 * before[0].item() + 0.25 * 36)
    torch.testing.assert_close(ghm.acc_sum[1:], before[1:])


def test_ghm_c_without_momentum_weights_by_this_batch_alone_and_ignores_minus_one():
    torch.manual_seed(1)
    logits = torch.randn(20, 4) * 2
    target_labels = torch.randint(-1, 5, (20,))
    ghm = GradientHarmonizedClassification(bins=30, momentum=0.0)
    expected, _ = ghm_by_hand(logits, target_labels, 30, 0.0, [0.0] * 30)
    assert ghm(logits, target_labels).item() == pytest.approx(expected, rel=1e-5)
    # the ignored rows change nothing
    keep = target_labels >= 0
    assert ghm(logits[keep], target_labels[keep]).item() == pytest.approx(expected, rel=1e-5)
    # without momentum the weights average to 1 over the valid entries: with a single bin GHM-C
    # is the mean BCE
    one_bin = GradientHarmonizedClassification(bins=1, momentum=0.0)
    one_hot = F.one_hot(target_labels[keep], 5)[:, 1:].float()
    mean_bce = F.binary_cross_entropy_with_logits(logits[keep], one_hot)
    torch.testing.assert_close(one_bin(logits, target_labels), mean_bce)


def test_ghm_c_state_updates_only_in_training_and_per_sample_sums_to_the_loss():
    torch.manual_seed(2)
    logits = torch.randn(10, 2)
    target_labels = labels(0, 1, 2, 0, 0, -1, 1, 0, 2, 0)
    ghm = GradientHarmonizedClassification(bins=10, momentum=0.75).train()
    ghm(logits, target_labels)
    after_one = ghm.acc_sum.clone()
    per_sample = ghm.per_sample(logits, target_labels)  # reads the average, does not update it
    torch.testing.assert_close(ghm.acc_sum, after_one)
    assert per_sample[5] == 0 and per_sample.shape == (10,)
    ghm.eval()
    eval_loss = ghm(logits, target_labels)
    torch.testing.assert_close(ghm.acc_sum, after_one)
    torch.testing.assert_close(per_sample.sum(), eval_loss)
    assert "acc_sum" in ghm.state_dict()


def test_ghm_c_is_not_divided_by_the_foreground_count_in_a_dense_head():
    torch.manual_seed(3)
    logits = torch.randn(2, 50, 3)
    target_labels = torch.randint(-1, 4, (2, 50))
    ghm = GradientHarmonizedClassification(bins=30, momentum=0.0)
    loss, loc_divisor = dense_classification_loss(AllSamples(), ghm, logits, target_labels)
    expected, _ = ghm_by_hand(logits.reshape(-1, 3), target_labels.reshape(-1), 30, 0.0, [0.0] * 30)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert loc_divisor == max(int((target_labels > 0).sum()), 1)  # the box loss keeps its divisor


def test_ghm_c_builds_from_its_options_and_refuses_bad_ones():
    settings = StageSettings(stage="ONE_STAGE", hard="all", soft="ghm_c", soft_options=(("BINS", 10),))
    ghm = build_soft_strategy(settings, "sigmoid")
    assert (ghm.bins, ghm.momentum, ghm.normalises_itself) == (10, 0.75, True)
    with pytest.raises(ValueError, match=r"ONE_STAGE\.SOFT_OPTIONS: ghm_c: MOMENTUM must be in \[0.0, 1.0\), got 1"):
        build_soft_strategy(StageSettings(stage="ONE_STAGE", hard="all", soft="ghm_c",
                                          soft_options=(("MOMENTUM", 1.0),)), "sigmoid")
    with pytest.raises(ValueError, match="softmax"):
        GradientHarmonizedClassification("softmax")


# ---------------------------------------------------------------- OHEM
def test_ohem_keeps_exactly_the_highest_loss_positives_and_negatives():
    torch.manual_seed(0)
    image_labels = torch.cat([torch.randint(1, 4, (6,)), torch.zeros(20, dtype=torch.long), -torch.ones(2).long()])
    image_labels = image_labels[torch.randperm(28)]
    cls_losses = torch.rand(28)
    cls_losses[image_labels == -1] = 10.0  # ignored ones must never be chosen, however high
    box_losses = torch.rand(28) * (image_labels > 0)
    candidates = Candidates(labels=[image_labels], losses=lambda: [cls_losses + box_losses],
                            classification_losses=lambda: [cls_losses])
    for loss, ranked in (("classification", cls_losses), ("total", cls_losses + box_losses)):
        selection = OnlineHardExampleMining(8, 0.25, loss=loss).select(candidates)
        (mask,) = selection.masks
        positive = torch.nonzero(image_labels > 0).squeeze(1)
        negative = torch.nonzero(image_labels == 0).squeeze(1)
        top_pos = set(positive[ranked[positive].argsort(descending=True)[:2]].tolist())
        top_neg = set(negative[ranked[negative].argsort(descending=True)[:6]].tolist())
        assert set(torch.nonzero(mask).squeeze(1).tolist()) == top_pos | top_neg, loss
        assert selection.cls_normalizer == selection.loc_normalizer == 8 and selection.weights is None


def test_ohem_fills_with_negatives_when_positives_are_few_and_needs_the_losses():
    image_labels = labels(1, 0, 0, 0, 0, 0)
    losses = torch.tensor([0.1, 0.5, 0.4, 0.3, 0.2, 0.6])
    selection = OnlineHardExampleMining(4, 0.5).select(
        Candidates(labels=[image_labels], classification_losses=lambda: [losses]))
    # 1 positive (fewer than 2), then the 3 highest-loss negatives: no cap on negatives per positive
    assert selection.masks[0].tolist() == [True, True, True, False, False, True]
    with pytest.raises(ValueError, match="'ohem' needs the candidates' classification_losses"):
        OnlineHardExampleMining(4, 0.5).select(Candidates(labels=[image_labels]))
    strategy = build_hard_strategy(roi_settings("ohem"))
    assert (strategy.sampler.batch_size_per_image, strategy.sampler.positive_fraction, strategy.loss) == \
        (512, 0.25, "classification")
    with pytest.raises(ValueError, match=r"ROI\.HARD_OPTIONS: ohem: LOSS must be one of .*got 'box'"):
        build_hard_strategy(roi_settings("ohem", hard_options=[("LOSS", "box")]))


# ---------------------------------------------------------------- IoU-balanced
def bin_of(iou, low, high, bins):
    width = (high - low) / bins
    return min(int((iou - low) // width), bins - 1)


def test_iou_balanced_draws_an_equal_share_of_negatives_from_each_iou_bin():
    # negatives' IoUs: 20 in [0, 0.1), 6 in [0.16, 0.29), 4 in [0.31, 0.45]; 10 positives
    ious = torch.cat([torch.linspace(0.0, 0.09, 20), torch.linspace(0.16, 0.29, 6), torch.linspace(0.31, 0.45, 4),
                      torch.full((10,), 0.7)])
    image_labels = torch.cat([torch.zeros(30, dtype=torch.long), torch.ones(10, dtype=torch.long)])
    for seed in range(5):
        torch.manual_seed(seed)
        selection = IoUBalancedNegativeSampling(16, 0.25).select(Candidates(labels=[image_labels], ious=[ious]))
        (mask,) = selection.masks
        chosen_neg = [bin_of(v, 0.0, 0.45, 3) for v in ious[mask & (image_labels == 0)].tolist()]
        assert [chosen_neg.count(b) for b in range(3)] == [4, 4, 4]  # 12 negatives, 12 // 3 per bin
        assert int((mask & (image_labels > 0)).sum()) == 4
        assert selection.cls_normalizer == selection.loc_normalizer == 16


def test_iou_balanced_tops_up_a_short_bin_from_the_other_negatives():
    ious = torch.cat([torch.linspace(0.0, 0.09, 20), torch.linspace(0.16, 0.29, 6), torch.tensor([0.40, 0.45])])
    image_labels = torch.zeros(28, dtype=torch.long)
    torch.manual_seed(0)
    (mask,) = IoUBalancedNegativeSampling(12, 0.25).select(Candidates(labels=[image_labels], ious=[ious])).masks
    counts = [[bin_of(v, 0.0, 0.45, 3) for v in ious[mask].tolist()].count(b) for b in range(3)]
    assert int(mask.sum()) == 12 and counts[2] == 2 and counts[0] >= 4 and counts[1] >= 4


def test_iou_balanced_floor_set_takes_its_fraction_of_the_budget():
    # floor below 0.1: 20 negatives; binned over [0.1, 0.4]: 4 per bin of width 0.1
    ious = torch.cat([torch.linspace(0.0, 0.09, 20), torch.tensor([0.11, 0.12, 0.13, 0.14, 0.21, 0.22, 0.23, 0.24,
                                                                    0.31, 0.32, 0.35, 0.40])])
    image_labels = torch.zeros(32, dtype=torch.long)
    strategy = build_hard_strategy(roi_settings("iou_balanced", budget=12, hard_options=[
        ("FLOOR_FRACTION", 0.5), ("FLOOR_THRESH", 0.1), ("NUM_BINS", 3)]))
    torch.manual_seed(0)
    (mask,) = strategy.select(Candidates(labels=[image_labels], ious=[ious])).masks
    chosen = ious[mask]
    assert int((chosen < 0.1).sum()) == 6  # int(12 * (1 - 0.5)) binned, the rest from the floor
    binned = [bin_of(v, 0.1, 0.4, 3) for v in chosen[chosen >= 0.1].tolist()]
    assert [binned.count(b) for b in range(3)] == [2, 2, 2]


def test_iou_balanced_takes_every_negative_when_there_are_few_and_needs_ious():
    image_labels = labels(0, 0, 1, -1)
    selection = IoUBalancedNegativeSampling(512, 0.25).select(
        Candidates(labels=[image_labels], ious=[torch.tensor([0.1, 0.3, 0.8, 0.45])]))
    assert selection.masks[0].tolist() == [True, True, True, False]
    with pytest.raises(ValueError, match="'iou_balanced' needs the candidates' ious"):
        IoUBalancedNegativeSampling(512, 0.25).select(Candidates(labels=[image_labels]))


# ---------------------------------------------------------------- ISR: hierarchical local rank
def test_hierarchical_local_rank_on_a_hand_case():
    # class 1: ground truth A with IoUs 0.9, 0.7, 0.8 and B with 0.6, 0.95; class 2: C with 0.5, 0.85
    ious = torch.tensor([0.9, 0.7, 0.8, 0.6, 0.95, 0.5, 0.85])
    groups = labels(0, 0, 0, 1, 1, 2, 2)
    classes = labels(1, 1, 1, 1, 1, 2, 2)
    # local ranks: A 0.9 -> 0, 0.8 -> 1, 0.7 -> 2; B 0.95 -> 0, 0.6 -> 1; C 0.85 -> 0, 0.5 -> 1.
    # class 1 ordered by (local rank, -IoU): B.95, A.9, A.8, B.6, A.7; class 2: C.85, C.5
    assert hierarchical_local_rank(ious, groups, classes).tolist() == [1, 4, 2, 3, 0, 1, 0]
    # one class for all: C.85 joins the rank-0 samples
    assert hierarchical_local_rank(ious, groups).tolist() == [1, 6, 3, 4, 0, 5, 2]


def trained_samples(ious, ground_truth, predicted_ious):
    return TrainedSamples(ious=ious, ground_truth=ground_truth, predicted_ious=lambda: predicted_ious)


def weighted_ce_gradient(logits, sample_labels, weights):
    """d/d logits of sum(weights * CE), the weights held constant."""
    logits = logits.detach().clone().requires_grad_(True)
    (F.cross_entropy(logits, sample_labels, reduction="none") * weights).sum().backward()
    return logits.grad


def test_isr_p_weights_positives_by_iou_hlr_and_keeps_their_loss_sum():
    torch.manual_seed(0)
    # the hand case above as 7 positives, plus 3 negatives
    sample_labels = labels(1, 1, 1, 1, 1, 2, 2, 0, 0, 0)
    predicted = torch.tensor([0.9, 0.7, 0.8, 0.6, 0.95, 0.5, 0.85, 0.0, 0.0, 0.0])
    ground_truth = labels(0, 0, 0, 1, 1, 2, 2, -1, -1, -1)
    logits = torch.randn(10, 3, requires_grad=True)
    isr = build_soft_strategy(roi_settings(soft="isr_p"), "softmax")
    assert (isr.k, isr.bias) == (2.0, 0.0)
    loss = isr(logits, sample_labels, context=trained_samples(torch.zeros(10), ground_truth, predicted))
    loss.backward()

    ce = F.cross_entropy(logits.detach(), sample_labels, reduction="none")
    ranks = torch.tensor([1, 4, 2, 3, 0, 1, 0], dtype=torch.float32)
    n_max = 5  # class 1 has the most positives
    importance = (1 - ranks / n_max) ** 2
    importance = importance * ce[:7].sum() / (importance * ce[:7]).sum()
    weights = torch.cat([importance, torch.ones(3)])
    # the loss sum is unchanged (ISR redistributes it) ...
    assert loss.item() == pytest.approx(ce.sum().item(), rel=1e-5)
    # ... and its gradient is that of the IoU-HLR-weighted CE
    torch.testing.assert_close(logits.grad, weighted_ce_gradient(logits, sample_labels, weights))


def test_isr_p_with_bias_keeps_given_weights_and_needs_the_context():
    sample_labels = labels(1, 1, 0)
    logits = torch.tensor([[0.0, 1.0], [0.0, 2.0], [1.0, 0.0]], requires_grad=True)
    isr = IoUHierarchicalReweighting(k=1.0, bias=0.5)
    context = trained_samples(torch.zeros(3), labels(0, 0, -1), torch.tensor([0.6, 0.8, 0.0]))
    given = torch.tensor([1.0, 1.0, 0.25])
    isr(logits, sample_labels, weights=given, context=context).backward()
    ce = F.cross_entropy(logits.detach(), sample_labels, reduction="none")
    # ranks: 0.8 -> 0, 0.6 -> 1; n_max 2: weights (1 - r / 2) * 0.5 + 0.5 = 0.75, 1
    importance = torch.tensor([0.75, 1.0])
    importance = importance * ce[:2].sum() / (importance * ce[:2]).sum()
    weights = torch.cat([importance, given[2:]])
    torch.testing.assert_close(logits.grad, weighted_ce_gradient(logits, sample_labels, weights))
    with pytest.raises(ValueError, match="isr_p needs the RoI box head's context"):
        isr(logits, sample_labels)
    with pytest.raises(ValueError, match="sigmoid"):
        build_soft_strategy(StageSettings(stage="ONE_STAGE", hard="all", soft="isr_p"), "sigmoid")


# ---------------------------------------------------------------- ISR-N
def test_nms_clusters_are_headed_by_exactly_the_boxes_class_wise_nms_keeps():
    torch.manual_seed(0)
    corners = torch.rand(60, 2) * 40
    boxes = torch.cat([corners, corners + 10 + torch.rand(60, 2) * 20], dim=1)
    scores = torch.rand(60)
    classes = torch.randint(1, 4, (60,))
    clusters = nms_clusters(boxes, scores, classes, 0.5)
    heads = set(clusters.tolist())
    # the IoUs are those of the default box convention (maskrcnn-benchmark's +1 widths): torchvision's
    # NMS of the same boxes as continuous ones (one pixel wider) is the reference
    assert heads == set(batched_nms(MASKRCNN_BENCHMARK.to_continuous(boxes), scores, classes, 0.5).tolist())
    for member, head in enumerate(clusters.tolist()):  # a member has its head's class and a lower score
        assert classes[member] == classes[head] and scores[member] <= scores[head]


def scores_with_best(best_scores, best_classes, num_classes=3):
    """Softmax-like rows whose best foreground column is ``best_classes`` with ``best_scores``."""
    rows = []
    for score, cls in zip(best_scores, best_classes):
        row = [0.0] * (num_classes + 1)
        row[cls] = score
        others = [c for c in range(1, num_classes + 1) if c != cls]
        for c in others:
            row[c] = score / 100
        row[0] = 1.0 - sum(row)
        rows.append(row)
    return torch.tensor(rows)


# one positive, then negatives n0..n9: n0-n5 above the 0.05 score threshold, n6-n9 below it.
# Clusters (same class, IoU > 0.5 with the head): {n0, n1, n5} (class 1 around X), {n2} (class 2
# on X), {n3, n4} (class 1 around Y). Local ranks 0, 1, 2 / 0 / 0, 1; hierarchical order by
# (local rank, -score): n0, n2, n3, n1, n4, n5.
X, Y = [0.0, 0.0, 10.0, 10.0], [50.0, 50.0, 60.0, 60.0]
ISR_N_BOXES = torch.tensor([[20.0, 20.0, 30.0, 30.0], X, [0.0, 0.0, 10.0, 9.0], X, Y, [50.0, 50.0, 60.0, 59.0],
                            [1.0, 0.0, 10.0, 10.0]] + [[80.0, 80.0, 90.0, 90.0]] * 4)
ISR_N_LABELS = labels(1, *([0] * 10))
ISR_N_SCORES = scores_with_best([0.9, 0.9, 0.8, 0.7, 0.6, 0.3, 0.2, 0.04, 0.03, 0.02, 0.01],
                                [1, 1, 1, 2, 1, 1, 1, 1, 2, 3, 1])
ISR_N_LOSSES = torch.linspace(0.5, 1.5, 11)
ORDER = [1, 3, 4, 2, 5, 6]  # n0, n2, n3, n1, n4, n5 as candidate indices


def isr_n_candidates():
    def predicted_boxes(classes):
        assert classes[0].tolist() == [1, 1, 1, 2, 1, 1, 1, 1, 2, 3, 1]  # the best foreground class
        return [ISR_N_BOXES]
    return Candidates(labels=[ISR_N_LABELS], scores=lambda: [ISR_N_SCORES], predicted_boxes=predicted_boxes,
                      classification_losses=lambda: [ISR_N_LOSSES])


def test_isr_n_ranks_negatives_by_score_hlr_and_weights_them_by_rank():
    # budget 4, 25 %: 1 positive and 3 negatives, the 3 best by HLR: n0, n2, n3
    selection = ScoreHierarchicalSampling(4, 0.25).select(isr_n_candidates())
    (mask,) = selection.masks
    assert torch.nonzero(mask).squeeze(1).tolist() == [0, 1, 3, 4]
    # weights (1 - r / n_max) ** 0.5, n_max = max(3 negatives, 6 above the threshold)
    weights = torch.tensor([(1 - r / 6) ** 0.5 for r in range(3)])
    chosen = torch.tensor([1, 3, 4])
    weights = weights * ISR_N_LOSSES[chosen].sum() / (weights * ISR_N_LOSSES[chosen]).sum()
    torch.testing.assert_close(selection.weights[0][chosen], weights)
    assert selection.weights[0][0] == 1.0  # the positive
    assert selection.cls_normalizer == selection.loc_normalizer == 4


def test_isr_n_draws_the_shortfall_below_the_score_threshold_with_the_lowest_weight():
    torch.manual_seed(0)
    # budget 8, 25 %: 2 positives wanted, 1 there; 7 negatives: the 6 ranked and 1 drawn of n6-n9
    selection = ScoreHierarchicalSampling(8, 0.25).select(isr_n_candidates())
    (mask,) = selection.masks
    chosen = torch.nonzero(mask).squeeze(1)
    drawn = [i for i in chosen.tolist() if i >= 7]
    assert chosen.tolist()[:7] == [0, 1, 2, 3, 4, 5, 6] and len(drawn) == 1
    ranked_weights = [(1 - r / 7) ** 0.5 for r in range(6)]  # n_max = max(7, 6)
    weights = torch.tensor(ranked_weights + [ranked_weights[-1]])
    order = torch.tensor(ORDER + drawn)
    weights = weights * ISR_N_LOSSES[order].sum() / (weights * ISR_N_LOSSES[order]).sum()
    torch.testing.assert_close(selection.weights[0][order], weights)


def test_isr_n_without_confident_negatives_samples_at_random_and_needs_scores():
    quiet = Candidates(labels=[labels(1, 0, 0, 0, 0)], scores=lambda: [scores_with_best([0.5] + [0.01] * 4, [1] * 5)],
                       predicted_boxes=lambda classes: [torch.tensor([X] * 5)],
                       classification_losses=lambda: [torch.ones(5)])
    torch.manual_seed(0)
    selection = ScoreHierarchicalSampling(4, 0.25).select(quiet)
    assert int(selection.masks[0].sum()) == 4 and selection.weights is None
    with pytest.raises(ValueError, match="'isr_n' needs the candidates' scores"):
        ScoreHierarchicalSampling(4, 0.25).select(Candidates(labels=[labels(1, 0)]))
    strategy = build_hard_strategy(roi_settings("isr_n", hard_options=[("SCORE_THRESH", 0.1)]))
    assert (strategy.k, strategy.bias, strategy.score_thresh, strategy.iou_thresh) == (0.5, 0.0, 0.1, 0.5)
    with pytest.raises(ValueError, match=r"ROI\.HARD_OPTIONS: isr_n: BIAS must be in \[0.0, 1.0\], got 2"):
        build_hard_strategy(roi_settings("isr_n", hard_options=[("BIAS", 2.0)]))
    with pytest.raises(ValueError, match=r"ROI\.SOFT_OPTIONS: isr_p: K must be in"):
        build_soft_strategy(roi_settings(soft="isr_p", soft_options=[("K", -1.0)]), "softmax")
    with pytest.raises(ValueError, match=r"ROI\.HARD_OPTIONS: iou_balanced: FLOOR_FRACTION must be in"):
        build_hard_strategy(roi_settings("iou_balanced", hard_options=[("FLOOR_FRACTION", 1.5)]))
