"""The one cross-process normaliser of the dense heads' losses.

A dense head divides its summed losses by the number of foreground samples (paper eq. 13). Under
data-parallel training each process sees a different batch; dividing by the count averaged over
the processes gives every process the same divisor, so the summed gradients equal those of one
big batch. The same averaging serves any other divisor (FCOS's and ATSS's centre-ness weight sum).
"""
import torch
import torch.distributed as dist


def mean_over_processes(value):
    """Average of a scalar tensor over the default process group (the value itself otherwise)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return value
    value = value.detach().clone()
    dist.all_reduce(value)
    return value / dist.get_world_size()


def cross_process_normalizer(count, minimum=1.0):
    """``count`` (a tensor or number: foreground samples, a weight sum) averaged over processes,
    at least ``minimum`` so that a batch without foreground gives finite losses."""
    count = torch.as_tensor(count, dtype=torch.float32)
    return mean_over_processes(count).clamp(min=minimum)
