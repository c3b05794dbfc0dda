"""Turns an epoch-based batch sampler into a fixed number of iterations."""
from torch.utils.data.sampler import BatchSampler


class IterationBasedBatchSampler(BatchSampler):
    """Yields the batches of iterations ``start_iter .. num_iterations - 1``, re-running
    ``batch_sampler`` epoch after epoch (calling ``set_epoch`` on its sampler when it has one).

    Resuming is exact: the batches yielded after ``start_iter`` are those an uninterrupted run
    yields after ``start_iter`` iterations, because the earlier epochs are replayed (indices
    only, no data is loaded) to find where iteration ``start_iter`` falls.
    """

    def __init__(self, batch_sampler, num_iterations, start_iter=0):
        if not 0 <= start_iter <= num_iterations:
            raise ValueError("need 0 <= start_iter <= num_iterations, got start_iter={} and "
                             "num_iterations={}".format(start_iter, num_iterations))
        self.batch_sampler = batch_sampler
        self.sampler = getattr(batch_sampler, "sampler", None)
        self.num_iterations = num_iterations
        self.start_iter = start_iter

    def _epoch_batches(self, epoch):
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)
        return self.batch_sampler

    def __iter__(self):
        iteration, epoch = 0, 0
        while iteration < self.num_iterations:
            empty_epoch = True
            for batch in self._epoch_batches(epoch):
                empty_epoch = False
                if iteration >= self.start_iter:
                    yield batch
                iteration += 1
                if iteration >= self.num_iterations:
                    return
            if empty_epoch:
                raise RuntimeError("the batch sampler yields no batch: is the dataset empty, or "
                                   "smaller than one batch with drop_uneven?")
            epoch += 1

    def __len__(self):
        return self.num_iterations
