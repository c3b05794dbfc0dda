"""The sample strategies against hand-computed values and independent references (torch's and
torchvision's loss functions)."""
import pytest
import torch
from torch.nn import functional as F
from torchvision.ops import sigmoid_focal_loss as tv_sigmoid_focal_loss

from maskrcnn_benchmark.modeling.balanced_positive_negative_sampler import BalancedPositiveNegativeSampler
from maskrcnn_benchmark.modeling.sample_strategy import (
    HARD_STRATEGIES,
    SOFT_STRATEGIES,
    AllSamples,
    BiasedSampling,
    Candidates,
    CrossEntropy,
    FocalLoss,
    as_hard_strategy,
    build_hard_strategy,
    build_soft_strategy,
)
from maskrcnn_benchmark.modeling.sampling_free import StageSettings


def labels(*values):
    return torch.tensor(values, dtype=torch.int64)


# ---------------------------------------------------------------- hard: "biased"
def test_biased_draws_the_budget_with_the_positive_cap_and_divides_by_the_number_drawn():
    torch.manual_seed(0)
    # image 1: 10 positives, 30 negatives, 5 ignored; image 2: 1 positive, 3 negatives
    first = torch.cat([torch.ones(10), torch.zeros(30), -torch.ones(5)]).long()[torch.randperm(45)]
    second = labels(0, 2, 0, -1, 0)
    selection = BiasedSampling(batch_size_per_image=16, positive_fraction=0.25).select(
        Candidates(labels=[first, second]))
    (mask1, mask2) = selection.masks
    assert mask1.dtype == torch.bool and mask1.shape == first.shape
    # image 1: 4 positives (25 % of 16), 12 negatives; image 2: all 1 + 3 (fewer than the budget)
    assert int((first[mask1] > 0).sum()) == 4 and int((first[mask1] == 0).sum()) == 12
    assert mask2.tolist() == [True, True, True, False, True]
    assert bool((first[mask1] >= 0).all())
    assert selection.cls_normalizer == selection.loc_normalizer == 16 + 4


def test_biased_draws_exactly_what_maskrcnn_benchmarks_sampler_draws():
    candidates = [labels(*([1] * 7 + [0] * 50 + [-1] * 3)), labels(*([0] * 20 + [3] * 2))]
    torch.manual_seed(3)
    positive, negative = BalancedPositiveNegativeSampler(32, 0.5)(candidates)
    torch.manual_seed(3)
    selection = as_hard_strategy(BalancedPositiveNegativeSampler(32, 0.5)).select(Candidates(labels=candidates))
    for pos, neg, mask in zip(positive, negative, selection.masks):
        assert torch.equal((pos | neg).bool(), mask)


def test_biased_without_any_sample_divides_by_one():
    selection = BiasedSampling(8, 0.5).select(Candidates(labels=[labels(-1, -1)]))
    assert selection.masks[0].tolist() == [False, False]
    assert selection.cls_normalizer == selection.loc_normalizer == 1


# ---------------------------------------------------------------- hard: "all"
def test_all_trains_every_label_from_zero_with_eq13_and_the_baseline_box_divisor():
    first = labels(*([1] * 100 + [0] * 900 + [-1] * 40))
    second = labels(2, 0, 0, -1)
    selection = AllSamples(batch_size_per_image=256, positive_fraction=0.5).select(
        Candidates(labels=[first, second]))
    assert torch.equal(selection.masks[0], first >= 0) and selection.masks[1].tolist() == [True, True, True, False]
    # eq. 13: the classification loss is divided by the foreground count, 100 + 1
    assert selection.cls_normalizer == 101
    # the biased sampler would draw min(100, 128) + min(256 - 100, 900) = 256 from image 1 and
    # 1 + 2 = 3 from image 2: the box loss keeps that divisor
    assert selection.loc_normalizer == 256 + 3


def test_all_on_a_dense_stage_divides_both_losses_by_the_foreground():
    selection = AllSamples().select(Candidates(labels=[labels(0, 3, 0, 1, -1), labels(0, 0)]))
    assert selection.cls_normalizer == selection.loc_normalizer == 2
    # no foreground at all: the divisors stay 1, the losses finite
    empty = AllSamples(256, 0.5).select(Candidates(labels=[labels(0, 0, -1)]))
    assert empty.cls_normalizer == 1 and empty.loc_normalizer == 2


def test_registered_hard_strategies_build_from_stage_settings():
    settings = StageSettings(stage="ROI", hard="biased", soft="ce", batch_size_per_image=512, positive_fraction=0.25)
    strategy = build_hard_strategy(settings)
    assert isinstance(strategy, BiasedSampling)
    assert (strategy.sampler.batch_size_per_image, strategy.sampler.positive_fraction) == (512, 0.25)
    assert HARD_STRATEGIES["all"] is AllSamples and SOFT_STRATEGIES["ce"] is CrossEntropy
    dense = StageSettings(stage="ONE_STAGE", hard="biased", soft="focal")
    with pytest.raises(ValueError, match=r"MODEL\.SAMPLING_FREE\.ONE_STAGE\.HARD.*'biased'.*BATCH_SIZE_PER_IMAGE"):
        build_hard_strategy(dense)
    with pytest.raises(KeyError, match=r"MODEL\.SAMPLING_FREE\.RPN\.HARD: unknown 'ohm'.*'all'.*'biased'"):
        build_hard_strategy(StageSettings(stage="RPN", hard="ohm", soft="ce"))


# ---------------------------------------------------------------- soft: "ce", "focal"
def test_sigmoid_ce_is_per_class_bce_over_non_ignored_samples():
    torch.manual_seed(0)
    logits = torch.randn(6, 3)
    target_labels = labels(0, 1, 3, -1, 2, 0)
    loss = CrossEntropy("sigmoid")(logits, target_labels)
    valid = target_labels >= 0
    one_hot = F.one_hot(target_labels[valid], 4)[:, 1:].float()
    expected = F.binary_cross_entropy_with_logits(logits[valid], one_hot, reduction="sum")
    torch.testing.assert_close(loss, expected)


def test_softmax_ce_matches_torch_and_ignores_minus_one():
    torch.manual_seed(0)
    logits = torch.randn(5, 4)
    target_labels = labels(0, 3, -1, 1, 0)
    loss = CrossEntropy("softmax")(logits, target_labels)
    keep = target_labels >= 0
    torch.testing.assert_close(loss, F.cross_entropy(logits[keep], target_labels[keep], reduction="sum"))


def test_focal_matches_torchvision():
    torch.manual_seed(0)
    logits = torch.randn(7, 3)
    target_labels = labels(0, 1, 2, 3, -1, 0, 2)
    loss = FocalLoss(gamma=2.0, alpha=0.25)(logits, target_labels)
    keep = target_labels >= 0
    one_hot = F.one_hot(target_labels[keep], 4)[:, 1:].float()
    expected = tv_sigmoid_focal_loss(logits[keep], one_hot, alpha=0.25, gamma=2.0, reduction="sum")
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("strategy", [CrossEntropy("sigmoid"), CrossEntropy("softmax"), FocalLoss()],
                         ids=["ce-sigmoid", "ce-softmax", "focal"])
def test_per_sample_losses_sum_to_the_loss_and_weights_scale_them(strategy):
    torch.manual_seed(1)
    columns = 4 if strategy.kind == "softmax" else 3
    logits = torch.randn(6, columns)
    target_labels = labels(0, 1, 3, -1, 2, 0)
    per_sample = strategy.per_sample(logits, target_labels)
    assert per_sample.shape == (6,) and per_sample[3] == 0
    torch.testing.assert_close(per_sample.sum(), strategy(logits, target_labels), rtol=1e-5, atol=1e-6)
    weights = torch.tensor([0.0, 2.0, 1.0, 5.0, 0.5, 1.0])
    torch.testing.assert_close(strategy(logits, target_labels, weights=weights), (per_sample * weights).sum())


def test_soft_strategies_check_the_classifier_kind():
    with pytest.raises(ValueError, match="softmax"):
        FocalLoss("softmax")
    roi_focal = StageSettings(stage="ROI", hard="biased", soft="focal", batch_size_per_image=512, positive_fraction=0.25)
    with pytest.raises(ValueError, match=r"MODEL\.SAMPLING_FREE\.ROI\.SOFT: 'focal' needs a sigmoid classifier"):
        build_soft_strategy(roi_focal, "softmax")
    focal = build_soft_strategy(StageSettings(stage="ONE_STAGE", hard="all", soft="focal", focal_gamma=1.5,
                                              focal_alpha=0.5), "sigmoid")
    assert (focal.gamma, focal.alpha) == (1.5, 0.5)
