"""PAA's candidates and its two-Gaussian mixture split, on hand-built cases."""
import math

import pytest
import torch

from maskrcnn_benchmark.modeling.rpn.paa.candidates import select_paa_candidates
from maskrcnn_benchmark.modeling.rpn.paa.gaussian_mixture import fit_two_gaussians, split_by_mixture

from helpers import square_grid

LOW = [0.10, 0.12, 0.15, 0.11]
HIGH = [2.0, 2.2, 1.9, 2.1, 2.05]


def test_two_separated_clusters_split_exactly():
    scores = torch.tensor([2.0, 0.10, 2.2, 0.12, 1.9, 0.15, 2.1, 0.11, 2.05])
    mixture = fit_two_gaussians(scores)
    components = mixture.predict(scores)
    assert components.tolist() == [1, 0, 1, 0, 1, 0, 1, 0, 1]
    low = mixture.low_component
    assert mixture.means[low].item() == pytest.approx(sum(LOW) / len(LOW), abs=1e-6)
    assert mixture.means[1 - low].item() == pytest.approx(sum(HIGH) / len(HIGH), abs=1e-6)
    assert mixture.weights[low].item() == pytest.approx(4 / 9, abs=1e-6)


def test_positives_are_the_low_cluster_up_to_its_centre():
    # Scheme (c): the low component's mean is 0.12; the member nearest it is 0.12, so the
    # positives are the candidates scoring at most 0.12: 0.10, 0.11 and 0.12.
    scores = torch.tensor([2.0, 0.10, 2.2, 0.12, 1.9, 0.15, 2.1, 0.11, 2.05])
    positive = split_by_mixture(scores)
    assert positive.tolist() == [False, True, False, True, False, False, False, True, False]


def test_em_log_likelihood_never_decreases():
    generator = torch.Generator().manual_seed(3)
    scores = torch.cat([
        torch.randn(15, generator=generator) * 0.3 + 0.5,
        torch.randn(25, generator=generator) * 0.6 + 2.0,
    ])
    mixture = fit_two_gaussians(scores, num_iters=60, tol=-math.inf)
    history = torch.tensor(mixture.log_likelihoods, dtype=torch.float64)
    assert len(history) == 61
    assert (history[1:] - history[:-1] >= -1e-9).all()
    assert history[-1] > history[0]
    assert mixture.log_likelihood(scores) == pytest.approx(history[-1].item())


def test_em_log_likelihood_is_the_mixture_density():
    scores = torch.tensor([0.0, 1.0, 5.0])
    mixture = fit_two_gaussians(scores, num_iters=0)
    # Initial state: means 0 and 5, both variances var(scores) = 14/3 (biased), weights 1/2.
    var = 14 / 3

    def density(x):
        return sum(0.5 * math.exp(-(x - m) ** 2 / (2 * var)) / math.sqrt(2 * math.pi * var) for m in (0.0, 5.0))

    expected = sum(math.log(density(x)) for x in (0.0, 1.0, 5.0))
    assert mixture.log_likelihoods[0] == pytest.approx(expected)


def test_degenerate_candidate_sets_are_all_positive():
    assert split_by_mixture(torch.tensor([0.7])).tolist() == [True]
    assert split_by_mixture(torch.tensor([0.3, 0.3, 0.3])).tolist() == [True, True, True]


def test_candidates_top_k_by_iou_among_owned_anchors():
    # 5x5 anchors of 20 at centres 5..45. Box [12, 12, 38, 38]: IoUs 0.592 (centre), 0.319
    # (4 edge neighbours), 0.186 (4 corners); the rest are 0.0 (or tiny) and fail IoU >= 0.1.
    anchors = square_grid(5, 10, 20)
    gt = torch.tensor([[12.0, 12.0, 38.0, 38.0]])
    anchor_idx, gt_idx = select_paa_candidates([anchors], gt, iou_threshold=0.1, topk=5)
    assert set(anchor_idx.tolist()) == {12, 7, 11, 13, 17}  # centre + the 4 edge neighbours
    assert (gt_idx == 0).all()
    anchor_idx, _ = select_paa_candidates([anchors], gt, iou_threshold=0.1, topk=20)
    assert set(anchor_idx.tolist()) == {6, 7, 8, 11, 12, 13, 16, 17, 18}


def test_an_anchor_is_candidate_of_its_best_box_only():
    anchors = square_grid(5, 10, 20)
    gt = torch.tensor([[12.0, 12.0, 38.0, 38.0], [14.0, 14.0, 36.0, 36.0]])
    anchor_idx, gt_idx = select_paa_candidates([anchors], gt, iou_threshold=0.1, topk=9)
    owners = dict(zip(anchor_idx.tolist(), gt_idx.tolist()))
    assert len(owners) == len(anchor_idx)  # no anchor twice
    assert owners[12] == 1  # centre anchor: IoU 0.826 with box 1 beats 0.592 with box 0


def test_a_box_below_the_threshold_keeps_its_best_anchor():
    anchors = square_grid(5, 10, 20)
    gt = torch.tensor([[22.0, 22.0, 26.0, 26.0]])  # 4x4: IoU 16/400 = 0.04 with its best anchor
    anchor_idx, gt_idx = select_paa_candidates([anchors], gt, iou_threshold=0.1, topk=9)
    assert anchor_idx.tolist() == [12] and gt_idx.tolist() == [0]


def test_no_boxes_no_candidates():
    anchor_idx, gt_idx = select_paa_candidates([square_grid(3, 10, 20)], torch.zeros(0, 4), 0.1, 9)
    assert anchor_idx.numel() == 0 and gt_idx.numel() == 0
