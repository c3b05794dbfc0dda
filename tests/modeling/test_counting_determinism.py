"""The optimal bias's counting pass transforms each image under generators seeded from SEED and
the image index: two passes load the same targets, and the generators training draws from are
left as they were."""
import random

import numpy as np
import torch

from maskrcnn_benchmark.modeling.sampling_free.bias_init import load_targets
from maskrcnn_benchmark.structures.bounding_box import BoxList


class RandomlyTransformed:
    """Each item's box moved by draws from python's, numpy's and torch's generators."""

    def __len__(self):
        return 6

    def __getitem__(self, index):
        shift = random.random() + float(np.random.rand()) + float(torch.rand(()))
        target = BoxList(torch.tensor([[index + shift, 0.0, index + shift + 5.0, 5.0]]), (64, 64))
        target.add_field("labels", torch.tensor([1]))
        return None, target, index


def boxes(targets):
    return [t.bbox.tolist() for _, t in targets]


def test_two_passes_load_the_same_targets_and_leave_the_generators_alone():
    dataset = RandomlyTransformed()
    random.seed(3)
    np.random.seed(3)
    torch.manual_seed(3)
    before = (random.random(), float(np.random.rand()), float(torch.rand(())))
    random.seed(3)
    np.random.seed(3)
    torch.manual_seed(3)
    first, first_fingerprint = load_targets(dataset, [4, 1, 2], seed=7)
    after = (random.random(), float(np.random.rand()), float(torch.rand(())))
    assert after == before  # the counting pass did not advance training's generators
    second, second_fingerprint = load_targets(dataset, [4, 1, 2], seed=7)
    assert boxes(first) == boxes(second) and first_fingerprint == second_fingerprint
    # an image's transform depends on SEED and its index, not on what was loaded before it
    alone, _ = load_targets(dataset, [2], seed=7)
    assert boxes(alone) == boxes(first)[2:]
    other, _ = load_targets(dataset, [4, 1, 2], seed=8)
    assert boxes(other) != boxes(first)
