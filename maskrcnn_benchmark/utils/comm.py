"""Helpers for multi-process (torch.distributed) training that also work in a single process.

Without an initialised process group every function behaves as if this were the only process:
world size 1, rank 0, no-op barriers, gathers that return ``[data]``.
"""
import contextlib
import inspect
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


def data_parallel(model, device, local_rank):
    """``model`` wrapped in DistributedDataParallel for this process (``device``, its ``local_rank``).

    BatchNorm statistics stay per process (not re-broadcast from rank 0 at every forward, as in
    maskrcnn-benchmark), and parameters a head leaves unused in a batch (e.g. the mask head of a
    batch without foreground) are allowed. torch 2.13 renamed ``broadcast_buffers`` to
    ``forward_sync_buffers`` (the old name warns from then on, the new one is refused before):
    whichever this torch knows is passed.
    """
    ddp = torch.nn.parallel.DistributedDataParallel
    known = inspect.signature(ddp.__init__).parameters
    buffers = "forward_sync_buffers" if "forward_sync_buffers" in known else "broadcast_buffers"
    return ddp(model, device_ids=[local_rank] if device.type == "cuda" else None,
               find_unused_parameters=True, **{buffers: False})


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


def broadcast_object(data, src=0):
    """``data`` of process ``src``, on every process (any picklable object)."""
    if get_world_size() == 1:
        return data
    holder = [data if get_rank() == src else None]
    dist.broadcast_object_list(holder, src=src)
    return holder[0]


def on_main_process(function):
    """Run ``function()`` on the main process only; every process returns its result, or raises
    the error it raised (so a check made once, e.g. on a shared folder, stops every process)."""
    result, error = None, None
    if is_main_process():
        try:
            result = function()
        except Exception as err:  # re-raised below, on every process
            error = err
    result, error = broadcast_object((result, error))
    if error is not None:
        raise error
    return result


class CollectiveError(RuntimeError):
    """A collective operation failed because another process stopped answering or died."""


# What gloo / NCCL say when a peer is too slow or gone (their errors are plain RuntimeErrors).
_TIMEOUT_WORDS = ("timed out", "timeout")
_LOST_PEER_WORDS = ("connection closed by peer", "connection reset by peer", "broken pipe")


def explain_collective_failure(err, timeout_minutes):
    """A :class:`CollectiveError` that says what ``err`` (raised inside a collective) means, or None
    when it is not a timeout or a lost peer."""
    text = str(err).lower()
    rank = f"process {get_rank()} of {get_world_size()}"
    if any(word in text for word in _TIMEOUT_WORDS):
        return CollectiveError(
            f"{rank}: a collective operation waited {timeout_minutes * 60:.0f} s (DIST_TIMEOUT_MINUTES "
            f"{timeout_minutes:g}) for the other processes and gave up: one of them is stopped, hung or far slower (look for the one "
            f"that did not fail with this message); raise DIST_TIMEOUT_MINUTES if it is only slow. ({err})")
    if any(word in text for word in _LOST_PEER_WORDS):
        return CollectiveError(
            f"{rank}: lost the connection to another process during a collective operation: it died or "
            f"was killed (see its own log / exit status). ({err})")
    return None


@contextlib.contextmanager
def collective_failures_explained(timeout_minutes):
    """A RuntimeError from a timed-out collective or a dead peer leaves the block as a
    :class:`CollectiveError` that says so (in a multi-process run; other errors pass unchanged)."""
    try:
        yield
    except CollectiveError:
        raise
    except RuntimeError as err:
        explained = explain_collective_failure(err, timeout_minutes) if get_world_size() > 1 else None
        if explained is None:
            raise
        raise explained from err
