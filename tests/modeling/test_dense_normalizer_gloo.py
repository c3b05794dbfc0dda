"""The dense heads' foreground normaliser in a two-process gloo group: every process divides by
the same mean count. (A module of its own: the spawned processes import only what it imports.)"""
import json
import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from maskrcnn_benchmark.modeling.dense_heads.normalizer import cross_process_normalizer


def _normalize_in_group(rank, world_size, rendezvous, output_dir):
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world_size)
    try:
        counts = {0: 3, 1: 0}  # rank 1 has no foreground in its batch
        value = cross_process_normalizer(torch.tensor(counts[rank]))
        with open(os.path.join(output_dir, f"rank{rank}.json"), "w") as handle:
            json.dump(value.item(), handle)
    finally:
        dist.destroy_process_group()


def test_normaliser_is_the_same_mean_on_every_process(tmp_path):
    mp.spawn(_normalize_in_group, args=(2, str(tmp_path / "rendezvous"), str(tmp_path)), nprocs=2, join=True)
    values = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(2)]
    assert values == [1.5, 1.5]  # (3 + 0) / 2 on both, not 3 and 1
