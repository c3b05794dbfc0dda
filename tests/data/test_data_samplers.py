"""Samplers and loaders: aspect groups, exact iteration counts and resume, shard coverage."""
import pytest
import torch
from torch.utils.data.sampler import BatchSampler, SequentialSampler

from maskrcnn_benchmark.config import cfg as default_cfg
from maskrcnn_benchmark.data import make_data_loader
from maskrcnn_benchmark.data.collate_batch import BatchCollator
from maskrcnn_benchmark.data.samplers import (DistributedSampler, GroupedBatchSampler,
                                              IterationBasedBatchSampler)
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.image_list import ImageList


def test_grouped_batches_hold_one_group_and_cover_everything():
    group_ids = [0, 1, 1, 0, 1, 0, 0, 1, 1, 1, 0]
    sampler = DistributedSampler(range(len(group_ids)), num_replicas=1, rank=0, seed=3)
    batches = list(GroupedBatchSampler(sampler, group_ids, batch_size=3))
    assert all(len({group_ids[i] for i in batch}) == 1 for batch in batches)
    assert sorted(i for batch in batches for i in batch) == list(range(len(group_ids)))
    # 5 of group 0 and 6 of group 1: 2 + 2 batches, one of them short
    assert sorted(len(b) for b in batches) == [2, 3, 3, 3]
    assert len(GroupedBatchSampler(sampler, group_ids, 3)) == 4
    dropped = list(GroupedBatchSampler(sampler, group_ids, 3, drop_uneven=True))
    assert [len(b) for b in dropped] == [3, 3, 3]
    assert len(GroupedBatchSampler(sampler, group_ids, 3, drop_uneven=True)) == 3


def test_iteration_based_sampler_yields_exact_count_and_resumes_exactly():
    sampler = DistributedSampler(range(10), num_replicas=1, rank=0, seed=0)
    full = list(IterationBasedBatchSampler(BatchSampler(sampler, 4, False), 17))
    assert len(full) == 17
    # every epoch (3 batches of 4 + 4 + 2) is a permutation, and epochs differ
    epoch0 = sorted(i for b in full[:3] for i in b)
    assert epoch0 == list(range(10))
    assert full[:3] != full[3:6]
    for start in (0, 1, 3, 7, 16, 17):
        resumed = list(IterationBasedBatchSampler(BatchSampler(sampler, 4, False), 17, start))
        assert resumed == full[start:]
    with pytest.raises(ValueError, match="start_iter"):
        IterationBasedBatchSampler(BatchSampler(sampler, 4, False), 5, 6)


def test_distributed_shards_are_disjoint_and_cover_the_dataset():
    dataset = range(11)
    shards = [list(DistributedSampler(dataset, num_replicas=3, rank=r, seed=1)) for r in range(3)]
    assert all(len(s) == 4 for s in shards)
    merged = [i for s in shards for i in s]
    assert set(merged) == set(dataset) and len(merged) == 12  # one index repeated as padding
    sampler = DistributedSampler(dataset, num_replicas=3, rank=0, seed=1)
    sampler.set_epoch(1)
    assert list(sampler) != shards[0]
    ordered = [list(DistributedSampler(dataset, 2, r, shuffle=False)) for r in range(2)]
    assert ordered == [[0, 2, 4, 6, 8, 10], [1, 3, 5, 7, 9, 0]]


def test_batch_collator_pads_to_the_divisor():
    images = [torch.ones(3, 10, 7), torch.ones(3, 5, 12)]
    targets = [BoxList(torch.zeros(0, 4), (7, 10)), BoxList(torch.zeros(0, 4), (12, 5))]
    batch, out_targets, ids = BatchCollator(8)(list(zip(images, targets, [4, 9])))
    assert isinstance(batch, ImageList) and batch.tensors.shape == (2, 3, 16, 16)
    assert [tuple(s) for s in batch.image_sizes] == [(10, 7), (5, 12)]
    assert out_targets == tuple(targets) and ids == (4, 9)


def _shapes_cfg(tmp_path, *overrides):
    cfg = default_cfg.clone()
    cfg.merge_from_list(["DATASETS.TRAIN", ("shapes_val",), "DATASETS.TEST", ("shapes_val",),
                         "INPUT.MIN_SIZE_TRAIN", (64,), "INPUT.MIN_SIZE_TEST", 64,
                         "DATALOADER.NUM_WORKERS", 0, "DATALOADER.SIZE_DIVISIBILITY", 32,
                         "SOLVER.IMS_PER_BATCH", 4, "SOLVER.MAX_ITER", 20, "TEST.IMS_PER_BATCH", 8]
                        + list(overrides))
    return cfg


def test_make_data_loader_on_shapes(tmp_path, monkeypatch):
    monkeypatch.setenv("MASKRCNN_DATA_DIR", str(tmp_path))
    cfg = _shapes_cfg(tmp_path)
    train = make_data_loader(cfg, is_train=True)
    assert len(train) == 20
    batches = [ids for _, _, ids in train]
    assert len(batches) == 20 and all(len(ids) == 4 for ids in batches)
    images, targets, _ = next(iter(train))
    assert images.tensors.shape == (4, 3, 64, 64) and len(targets) == 4
    # same seed, same order; resuming at 12 replays the last 8 batches
    assert [ids for _, _, ids in make_data_loader(cfg, is_train=True)] == batches
    assert [ids for _, _, ids in make_data_loader(cfg, True, start_iter=12)] == batches[12:]

    tests = make_data_loader(cfg, is_train=False)
    assert isinstance(tests, list) and len(tests) == 1
    ids = [i for _, _, batch_ids in tests[0] for i in batch_ids]
    assert ids == list(range(64)) and hasattr(tests[0].dataset, "coco")


def test_global_batch_must_split_across_processes(tmp_path, monkeypatch):
    monkeypatch.setenv("MASKRCNN_DATA_DIR", str(tmp_path))
    import maskrcnn_benchmark.data.build as build

    monkeypatch.setattr(build, "_world", lambda: (3, 0))
    with pytest.raises(ValueError, match=r"SOLVER.IMS_PER_BATCH \(4\).*\(3\)"):
        make_data_loader(_shapes_cfg(tmp_path), is_train=True)
