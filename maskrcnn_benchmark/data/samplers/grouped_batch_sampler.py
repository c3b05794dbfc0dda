"""Batches whose images all share an aspect-ratio group (less padding per batch)."""
from torch.utils.data.sampler import BatchSampler, Sampler


class GroupedBatchSampler(BatchSampler):
    """Walks ``sampler`` in its order and fills one buffer per group; a full buffer is emitted as
    a batch. At the end of the epoch the incomplete buffers are emitted too, unless
    ``drop_uneven`` is set. Every batch holds indices of a single group.

    ``group_ids[i]`` is the group of dataset index ``i``.
    """

    def __init__(self, sampler, group_ids, batch_size, drop_uneven=False):
        if not isinstance(sampler, Sampler):
            raise ValueError("sampler should be a torch.utils.data.Sampler, got {!r}".format(sampler))
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1, got {}".format(batch_size))
        self.sampler = sampler
        self.group_ids = list(group_ids)
        self.batch_size = batch_size
        self.drop_uneven = drop_uneven

    def __iter__(self):
        buffers = {}
        for index in self.sampler:
            buffer = buffers.setdefault(self.group_ids[index], [])
            buffer.append(index)
            if len(buffer) == self.batch_size:
                yield list(buffer)
                buffer.clear()
        if not self.drop_uneven:
            for buffer in buffers.values():  # in the order the groups first appeared
                if buffer:
                    yield list(buffer)

    def __len__(self):
        counts = {}
        for index in self.sampler:
            counts[self.group_ids[index]] = counts.get(self.group_ids[index], 0) + 1
        if self.drop_uneven:
            return sum(n // self.batch_size for n in counts.values())
        return sum(-(-n // self.batch_size) for n in counts.values())
