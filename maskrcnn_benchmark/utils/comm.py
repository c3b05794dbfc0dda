"""Helpers for multi-process (torch.distributed) training that also work in a single process.

Without an initialised process group every function behaves as if this were the only process:
world size 1, rank 0, no-op barriers, gathers that return ``[data]``.
"""
import os

import torch
import torch.distributed as dist


def _distributed():
    return dist.is_available() and dist.is_initialized()


def get_world_size():
    return dist.get_world_size() if _distributed() else 1


def get_rank():
    return dist.get_rank() if _distributed() else 0


def get_local_rank():
    """This process's index on its machine (``LOCAL_RANK``, set by torchrun), 0 when unset."""
    if not _distributed():
        return 0
    return int(os.environ.get("LOCAL_RANK", 0))


def is_main_process():
    return get_rank() == 0


def synchronize():
    """Barrier across all processes (nothing to wait for in a single process)."""
    if get_world_size() > 1:
        dist.barrier()


def all_gather(data):
    """Gather any picklable object from every process; returns the list ordered by rank.

    With NCCL, the current CUDA device must be this process's GPU (``torch.cuda.set_device``).
    """
    world_size = get_world_size()
    if world_size == 1:
        return [data]
    gathered = [None] * world_size
    dist.all_gather_object(gathered, data)
    return gathered


def reduce_dict(input_dict, average=True):
    """Sum (or, with ``average``, average) a dict of scalar tensors over all processes.

    Every process gets the reduced values (used to log losses that agree across ranks). Keys
    are processed in sorted order so that all ranks stack the values the same way.
    """
    world_size = get_world_size()
    if world_size < 2:
        return input_dict
    with torch.no_grad():
        names = sorted(input_dict.keys())
        values = torch.stack([input_dict[name].detach().reshape(()) for name in names])
        dist.all_reduce(values)
        if average:
            values /= world_size
        return {name: value for name, value in zip(names, values)}
