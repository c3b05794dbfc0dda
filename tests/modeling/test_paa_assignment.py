"""PAA's IoU pre-assignment, its candidates and its two-Gaussian mixture split, on hand-built cases
and against a plain-Python EM written from scikit-learn's documented algorithm (the fit PAA's
public code uses: means start at the smallest / largest score, variances at 1, weights at 1/2;
reg_covar 1e-6 added to each variance; stop when the mean log-likelihood per score changes by less
than 1e-3, at most 100 steps)."""
import math
import random

import pytest
import torch

from maskrcnn_benchmark.modeling.rpn.paa.candidates import iou_pre_assignment, select_paa_candidates
from maskrcnn_benchmark.modeling.rpn.paa.gaussian_mixture import fit_two_gaussians, split_by_mixture

from helpers import square_grid


def reference_em(xs, max_iter=100, tol=1e-3, reg=1e-6):
    """scikit-learn's EM for a 1-D two-component mixture, in plain floats. Returns the parameters
    and the mean log-likelihood seen before each M-step."""
    means, variances, weights = [min(xs), max(xs)], [1.0, 1.0], [0.5, 0.5]
    seen, lower_bound = [], -math.inf
    for _ in range(max_iter):
        resp, total = [], 0.0
        for x in xs:
            parts = [weights[k] * math.exp(-(x - means[k]) ** 2 / (2 * variances[k])) / math.sqrt(2 * math.pi * variances[k])
                     for k in (0, 1)]
            total += math.log(sum(parts))
            resp.append([p / sum(parts) for p in parts])
        mean_ll = total / len(xs)
        seen.append(mean_ll)
        mass = [sum(r[k] for r in resp) + 10 * 2.220446049250313e-16 for k in (0, 1)]
        means = [sum(r[k] * x for r, x in zip(resp, xs)) / mass[k] for k in (0, 1)]
        variances = [sum(r[k] * (x - means[k]) ** 2 for r, x in zip(resp, xs)) / mass[k] + reg for k in (0, 1)]
        weights = [m / sum(mass) for m in mass]
        change, lower_bound = mean_ll - lower_bound, mean_ll
        if abs(change) < tol:
            break
    return means, variances, weights, seen


def reference_density(x, means, variances, weights):
    return sum(weights[k] * math.exp(-(x - means[k]) ** 2 / (2 * variances[k])) / math.sqrt(2 * math.pi * variances[k])
               for k in (0, 1))


def random_score_sets(count, seed=0):
    rng = random.Random(seed)
    sets = []
    for _ in range(count):
        k = rng.randint(2, 30)
        low = rng.randint(1, k - 1)
        sets.append([rng.gauss(0.5, 0.2) for _ in range(low)] + [rng.gauss(2.0, 0.6) for _ in range(k - low)])
    return sets


def test_em_matches_the_reference_algorithm_and_stops_at_its_tolerance():
    for xs in random_score_sets(40):
        means, variances, weights, seen = reference_em(xs)
        mixture = fit_two_gaussians(torch.tensor(xs, dtype=torch.float64))
        assert mixture.means[0].tolist() == pytest.approx(means, rel=1e-9, abs=1e-12)
        assert mixture.variances[0].tolist() == pytest.approx(variances, rel=1e-9)
        assert mixture.weights[0].tolist() == pytest.approx(weights, rel=1e-9)
        assert int(mixture.iterations[0]) == len(seen)
        assert bool(mixture.converged[0]) == (len(seen) < 100)


def test_the_fit_starts_from_unit_variances_not_the_data_variance():
    # One EM step from means (0, 10), variances 1, weights 1/2, by hand: 0 and 1 belong to the
    # first component (responsibility ~1), 10 to the second.
    mixture = fit_two_gaussians(torch.tensor([0.0, 1.0, 10.0]), max_iter=1)
    assert mixture.means[0].tolist() == pytest.approx([0.5, 10.0], abs=1e-9)
    assert mixture.variances[0].tolist() == pytest.approx([0.25 + 1e-6, 1e-6], abs=1e-9)
    assert mixture.weights[0].tolist() == pytest.approx([2 / 3, 1 / 3], abs=1e-9)


def test_batched_fit_equals_box_by_box_fits():
    sets = random_score_sets(12, seed=5)
    width = max(len(s) for s in sets)
    grid = torch.zeros(len(sets), width, dtype=torch.float64)
    valid = torch.zeros(len(sets), width, dtype=torch.bool)
    for row, xs in enumerate(sets):
        grid[row, :len(xs)] = torch.tensor(xs, dtype=torch.float64)
        valid[row, :len(xs)] = True
    batched = fit_two_gaussians(grid, valid)
    positives = split_by_mixture(grid, valid)
    for row, xs in enumerate(sets):
        alone = fit_two_gaussians(torch.tensor(xs, dtype=torch.float64))
        assert torch.allclose(batched.means[row], alone.means[0])
        assert int(batched.iterations[row]) == int(alone.iterations[0])
        assert positives[row, :len(xs)].tolist() == split_by_mixture(torch.tensor(xs)).tolist()
        assert not positives[row, len(xs):].any()


def reference_split(xs):
    """PAA's cut, from the reference fit: sorted by score, up to the foreground candidate (component
    started at the minimum) of highest mixture density."""
    means, variances, weights, _ = reference_em(xs)
    order = sorted(range(len(xs)), key=lambda i: xs[i])

    def part(k, x):
        return weights[k] * math.exp(-(x - means[k]) ** 2 / (2 * variances[k])) / math.sqrt(variances[k])

    foreground = [i for i in order if part(0, xs[i]) >= part(1, xs[i])]
    if not foreground:
        return [True] * len(xs)
    best = max(foreground, key=lambda i: reference_density(xs[i], means, variances, weights))
    cut = order.index(best)
    positive = [False] * len(xs)
    for i in order[:cut + 1]:
        positive[i] = True
    return positive


def test_positives_are_cut_at_the_foreground_candidate_of_highest_density():
    for xs in random_score_sets(40, seed=11):
        assert split_by_mixture(torch.tensor(xs, dtype=torch.float64)).tolist() == reference_split(xs)


def test_the_cut_is_not_the_candidate_nearest_the_foreground_mean():
    # The foreground component ends with mean 0.49 over 0.0, 0.2, 0.8 (0.2 is nearest it), but the
    # mixture density, which the background component also feeds, is highest at 0.8: all three are
    # positive, where a cut at the member nearest the mean would drop 0.8.
    xs = [0.0, 0.2, 0.8, 1.5, 3.0]
    means, _, _, _ = reference_em(xs)
    assert means[0] == pytest.approx(0.491, abs=1e-3)
    assert min(xs[:3], key=lambda x: abs(x - means[0])) == 0.2
    assert split_by_mixture(torch.tensor(xs)).tolist() == reference_split(xs) == [True, True, True, False, False]


def test_single_candidates_and_ties():
    assert split_by_mixture(torch.tensor([0.7])).tolist() == [True]
    # Identical scores: both components coincide and every candidate is foreground with the same
    # density. PAA's code would keep the first in its sort order; tied candidates stay together here.
    assert split_by_mixture(torch.tensor([0.3, 0.3, 0.3])).tolist() == [True, True, True]
    scores = torch.tensor([0.4, 0.73, 0.73, 0.73, 0.73, 0.98, 0.98, 0.98, 0.98])
    positive = split_by_mixture(scores)
    assert positive[1:5].all() == positive[1:5].any()  # the four ties together
    assert positive[5:].all() == positive[5:].any()


# ---------------------------------------------------------------- IoU pre-assignment, candidates

def test_pre_assignment_at_the_iou_threshold_goes_to_the_best_box():
    anchors = square_grid(5, 10, 20)
    gt = torch.tensor([[12.0, 12.0, 38.0, 38.0], [14.0, 14.0, 36.0, 36.0]])
    assigned = iou_pre_assignment(anchors, gt, iou_threshold=0.1)
    # IoUs with box 0: centre 0.592, edges 0.319, corners 0.186; box 1 (22x22): centre 0.826.
    assert assigned[12].item() == 1
    assert set((assigned >= 0).nonzero().flatten().tolist()) == {6, 7, 8, 11, 12, 13, 16, 17, 18}
    assert (assigned[[0, 1, 2, 3, 4, 24]] == -1).all()


def test_a_box_below_the_threshold_keeps_every_anchor_tied_at_its_best_iou():
    # 30 px anchors centred at 5, 15, ..., 45: the 4x4 box [18, 22] lies inside those centred at 15
    # and 25 on both axes, each with IoU 16 / 900 < 0.1. All four are tied at the box's best IoU.
    anchors = square_grid(5, 10, 30)
    gt = torch.tensor([[18.0, 18.0, 22.0, 22.0]])
    assigned = iou_pre_assignment(anchors, gt, iou_threshold=0.1)
    assert sorted((assigned == 0).nonzero().flatten().tolist()) == [6, 7, 11, 12]
    assert (assigned >= 0).sum() == 4


def test_a_box_without_any_overlap_takes_no_anchor():
    anchors = square_grid(3, 10, 10)
    gt = torch.tensor([[100.0, 100.0, 110.0, 110.0]])
    assert (iou_pre_assignment(anchors, gt, 0.1) == -1).all()


def test_candidates_are_the_lowest_scores_per_box_and_level_not_the_highest_ious():
    # Two levels of 4 anchors; all pre-assigned to box 0 except anchor 2 (box 1).
    assigned = torch.tensor([0, 0, 1, 0, 0, 0, 0, 1])
    scores = torch.tensor([0.9, 0.1, 0.5, 0.4, 0.3, 0.2, 0.8, 0.6])
    anchor_idx, box_idx = select_paa_candidates([4, 4], assigned, scores, num_boxes=2, topk=2)
    chosen = sorted(zip(box_idx.tolist(), anchor_idx.tolist()))
    # box 0: level 1 -> 1 (0.1), 3 (0.4); level 2 -> 5 (0.2), 4 (0.3); box 1: 2, then 7.
    assert chosen == [(0, 1), (0, 3), (0, 4), (0, 5), (1, 2), (1, 7)]


def test_no_boxes_no_candidates():
    anchors = square_grid(3, 10, 20)
    assigned = iou_pre_assignment(anchors, torch.zeros(0, 4), 0.1)
    assert (assigned == -1).all()
    anchor_idx, box_idx = select_paa_candidates([9], assigned, torch.zeros(9), num_boxes=0, topk=9)
    assert anchor_idx.numel() == 0 and box_idx.numel() == 0
