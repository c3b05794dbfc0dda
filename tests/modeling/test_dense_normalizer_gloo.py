"""The dense heads' foreground normaliser in a two-process gloo group: every process divides by
the same mean count. (A module of its own: the spawned processes import only what it imports.)"""
import torch
from gloo_group import run_in_gloo_group

from maskrcnn_benchmark.modeling.dense_heads.normalizer import cross_process_normalizer


def _normalize_in_group(rank, world_size):
    counts = {0: 3, 1: 0}  # rank 1 has no foreground in its batch
    return cross_process_normalizer(torch.tensor(counts[rank])).item()


def test_normaliser_is_the_same_mean_on_every_process(tmp_path):
    values = run_in_gloo_group(_normalize_in_group, tmp_path)
    assert values == [1.5, 1.5]  # (3 + 0) / 2 on both, not 3 and 1
