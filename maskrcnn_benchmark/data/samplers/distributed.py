"""Shards a dataset across processes, reshuffled per epoch from (seed, epoch) alone."""
import math

import torch
import torch.distributed as dist
from torch.utils.data.sampler import Sampler


class DistributedSampler(Sampler):
    """Each of ``num_replicas`` processes draws a disjoint shard of the dataset; together they
    cover it (the order is padded by repeating its start so that every shard has the same size).

    The order depends only on ``seed`` and the epoch given to ``set_epoch``, so a resumed run
    replays exactly the order of an uninterrupted one. With one replica it is a seeded shuffle.
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0):
        if num_replicas is None:
            num_replicas = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        if rank is None:
            rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        if not 0 <= rank < num_replicas:
            raise ValueError("rank {} is not in [0, {})".format(rank, num_replicas))
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self.num_samples = int(math.ceil(len(dataset) / num_replicas))
        self.total_size = self.num_samples * num_replicas

    def __iter__(self):
        if self.shuffle:
            generator = torch.Generator()
            generator.manual_seed(self.seed + self.epoch)
            order = torch.randperm(len(self.dataset), generator=generator).tolist()
        else:
            order = list(range(len(self.dataset)))
        order += order[: self.total_size - len(order)]
        # interleaved shards: rank r takes positions r, r + R, r + 2R, ...
        return iter(order[self.rank: self.total_size: self.num_replicas])

    def __len__(self):
        return self.num_samples

    def set_epoch(self, epoch):
        self.epoch = epoch
