"""GroupedBatchSampler keeps the sampler's order: batches come in the order of their first index,
short batches included where that index came (maskrcnn-benchmark's order)."""
import random

import pytest
import torch
from torch.utils.data.sampler import RandomSampler, Sampler

from maskrcnn_benchmark.data.samplers import DistributedSampler, GroupedBatchSampler


class ListSampler(Sampler):
    """Yields a fixed list of indices."""

    def __init__(self, order):
        self.order = list(order)

    def __iter__(self):
        return iter(self.order)

    def __len__(self):
        return len(self.order)


def reference_batches(order, group_ids, batch_size, drop_uneven=False):
    """The expected order written as a sort: cut each group's sampled indices into chunks, then
    sort all chunks by the sampled position of their first index."""
    chunks = []
    for group in set(group_ids[i] for i in order):
        members = [(pos, i) for pos, i in enumerate(order) if group_ids[i] == group]
        for start in range(0, len(members), batch_size):
            chunks.append(members[start:start + batch_size])
    chunks.sort(key=lambda chunk: chunk[0][0])
    batches = [[i for _, i in chunk] for chunk in chunks]
    if drop_uneven:
        batches = [b for b in batches if len(b) == batch_size]
    return batches


# index:      0  1  2  3  4  5  6
GROUP_IDS = [0, 1, 0, 1, 0, 0, 1]
ORDER = [5, 1, 0, 3, 6, 2, 4]
# group 0 in sampled order: 5, 0, 2, 4 -> [5, 0] (first at position 0), [2, 4] (position 5)
# group 1 in sampled order: 1, 3, 6    -> [1, 3] (position 1), [6] (position 4, short)


def test_batches_follow_the_position_of_their_first_index():
    batches = list(GroupedBatchSampler(ListSampler(ORDER), GROUP_IDS, batch_size=2))
    assert batches == [[5, 0], [1, 3], [6], [2, 4]]


def test_a_batch_started_earlier_comes_first_even_when_it_fills_later():
    # group 0 = {0, 3}, group 1 = {1, 2}: group 1's batch is full at position 2, group 0's only
    # at position 3, but group 0's batch started first
    batches = list(GroupedBatchSampler(ListSampler([0, 1, 2, 3]), [0, 1, 1, 0], batch_size=2))
    assert batches == [[0, 3], [1, 2]]


def test_drop_uneven_drops_only_the_short_batches():
    sampler = GroupedBatchSampler(ListSampler(ORDER), GROUP_IDS, batch_size=2, drop_uneven=True)
    assert list(sampler) == [[5, 0], [1, 3], [2, 4]]
    assert len(sampler) == 3


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("drop_uneven", [False, True])
def test_matches_the_sorted_formulation_on_random_cases(seed, drop_uneven):
    rng = random.Random(seed)
    size = rng.randint(1, 40)
    group_ids = [rng.randint(0, 3) for _ in range(size)]
    order = rng.sample(range(size), rng.randint(1, size))  # a subset, as a shard would be
    batch_size = rng.randint(1, 5)
    sampler = GroupedBatchSampler(ListSampler(order), group_ids, batch_size, drop_uneven)
    expected = reference_batches(order, group_ids, batch_size, drop_uneven)
    assert len(sampler) == len(expected)
    assert list(sampler) == expected


def test_len_then_iter_draw_a_random_sampler_once():
    group_ids = [i % 3 for i in range(20)]
    torch.manual_seed(11)
    first_draw = list(RandomSampler(range(20)))
    torch.manual_seed(11)
    sampler = GroupedBatchSampler(RandomSampler(range(20)), group_ids, batch_size=4)
    n = len(sampler)
    batches = list(sampler)
    assert batches == reference_batches(first_draw, group_ids, 4)
    assert n == len(batches)


def test_a_new_epoch_is_not_served_from_the_batches_len_kept():
    group_ids = [i % 2 for i in range(12)]
    shard = DistributedSampler(range(12), num_replicas=1, rank=0, seed=5)
    sampler = GroupedBatchSampler(shard, group_ids, batch_size=3)
    len(sampler)  # keeps the batches of epoch 0
    shard.set_epoch(1)
    assert list(sampler) == reference_batches(list(shard), group_ids, 3)
