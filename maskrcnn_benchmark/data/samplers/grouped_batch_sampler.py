"""Batches whose images all share an aspect-ratio group (less padding per batch)."""
from torch.utils.data.sampler import BatchSampler, Sampler


class GroupedBatchSampler(BatchSampler):
    """Batches of ``batch_size`` indices of one group each, in the order of ``sampler``.

    The indices of each group, taken in the order ``sampler`` yields them, are cut into batches
    of ``batch_size``; a group's last batch may be shorter. The batches of all groups then come
    out in the order in which their FIRST index was sampled, so a short batch comes where its
    first index came, not at the end of the epoch (the order maskrcnn-benchmark gives).
    ``drop_uneven`` drops the short batches. An index the sampler yields twice is batched twice.

    ``group_ids[i]`` is the group of dataset index ``i``.

    ``len()`` has to walk the sampler; the batches it found are kept for the next ``iter()``, so
    that a random sampler is drawn once for both and the length is that of the batches yielded
    (not when the sampler's ``epoch`` changed in between, e.g. by ``set_epoch``).
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
        self._batches_for_next_iter = None  # (sampler epoch, batches) kept by __len__

    def _epoch(self):
        return getattr(self.sampler, "epoch", None)

    def _make_batches(self):
        batches = []  # in the order their first index was sampled
        filling = {}  # group -> its batch that is not full yet
        for index in self.sampler:
            group = self.group_ids[index]
            batch = filling.get(group)
            if batch is None:
                batch = filling[group] = []
                batches.append(batch)
            batch.append(index)
            if len(batch) == self.batch_size:
                del filling[group]
        if self.drop_uneven:
            batches = [batch for batch in batches if len(batch) == self.batch_size]
        return batches

    def __iter__(self):
        kept, self._batches_for_next_iter = self._batches_for_next_iter, None
        if kept is not None and kept[0] == self._epoch():
            return iter(kept[1])
        return iter(self._make_batches())

    def __len__(self):
        if self._batches_for_next_iter is None or self._batches_for_next_iter[0] != self._epoch():
            self._batches_for_next_iter = (self._epoch(), self._make_batches())
        return len(self._batches_for_next_iter[1])
