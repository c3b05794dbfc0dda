"""Run a function on every rank of a local two-process (or larger) gloo group and collect what each
rank returns. A module of its own: the spawned processes import only this and the caller's module."""
import json
import os

import torch.distributed as dist
import torch.multiprocessing as mp


def _run_rank(rank, world_size, function, args, folder):
    os.environ["LOCAL_RANK"] = str(rank)
    rendezvous = os.path.join(folder, "rendezvous")
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world_size)
    try:
        result = function(rank, world_size, *args)
        with open(os.path.join(folder, f"rank{rank}.json"), "w") as handle:
            json.dump(result, handle)
    finally:
        dist.destroy_process_group()


def run_in_gloo_group(function, folder, world_size=2, args=()):
    """``[function(rank, world_size, *args) for every rank]``, each rank in its own process of one
    gloo group; ``function`` is module-level (spawn pickles it by name) and returns JSON values."""
    folder = str(folder)
    mp.spawn(_run_rank, args=(world_size, function, tuple(args), folder), nprocs=world_size, join=True)
    results = []
    for rank in range(world_size):
        with open(os.path.join(folder, f"rank{rank}.json")) as handle:
            results.append(json.load(handle))
    return results
