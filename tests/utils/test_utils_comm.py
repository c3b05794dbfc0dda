import pytest
import torch
import torch.distributed as dist
from gloo_group import run_in_gloo_group

from maskrcnn_benchmark.utils import comm


def test_single_process_behaves_as_rank_zero_of_one():
    assert not dist.is_initialized()
    assert comm.get_world_size() == 1
    assert comm.get_rank() == 0
    assert comm.get_local_rank() == 0
    assert comm.is_main_process()
    comm.synchronize()  # must not block or raise
    payload = {"boxes": [1, 2, 3], "name": "a"}
    assert comm.all_gather(payload) == [payload]
    losses = {"loss_a": torch.tensor(1.5), "loss_b": torch.tensor(2.0)}
    assert comm.reduce_dict(losses) is losses


def _collectives(rank, world_size):
    # a picklable object whose size differs between ranks
    gathered = comm.all_gather({"rank": rank, "items": list(range(rank + 2))})
    losses = {"loss_b": torch.tensor(10.0 * rank), "loss_a": torch.tensor(rank + 1.0)}
    averaged = comm.reduce_dict(losses, average=True)
    summed = comm.reduce_dict(losses, average=False)
    comm.synchronize()
    return {
        "world_size": comm.get_world_size(),
        "rank": comm.get_rank(),
        "local_rank": comm.get_local_rank(),
        "main": comm.is_main_process(),
        "gathered": gathered,
        "averaged": {name: value.item() for name, value in averaged.items()},
        "summed": {name: value.item() for name, value in summed.items()},
    }


def test_two_process_gloo_group(tmp_path):
    results = run_in_gloo_group(_collectives, tmp_path)
    expected_gather = [{"rank": 0, "items": [0, 1]}, {"rank": 1, "items": [0, 1, 2]}]
    for rank, result in enumerate(results):
        assert result["world_size"] == 2
        assert result["rank"] == result["local_rank"] == rank
        assert result["main"] == (rank == 0)
        assert result["gathered"] == expected_gather
        # loss_a: 1 and 2 -> mean 1.5, sum 3; loss_b: 0 and 10 -> mean 5, sum 10
        assert result["averaged"] == {"loss_a": 1.5, "loss_b": 5.0}
        assert result["summed"] == {"loss_a": 3.0, "loss_b": 10.0}


class _OldDDP:  # the keywords of torch < 2.13's DistributedDataParallel
    def __init__(self, module, device_ids=None, broadcast_buffers=True, find_unused_parameters=False):
        self.keywords = {"device_ids": device_ids, "broadcast_buffers": broadcast_buffers,
                         "find_unused_parameters": find_unused_parameters}


class _NewDDP:  # torch >= 2.13: forward_sync_buffers, broadcast_buffers deprecated
    def __init__(self, module, device_ids=None, broadcast_buffers=None, find_unused_parameters=False,
                 forward_sync_buffers=None):
        self.keywords = {"device_ids": device_ids, "broadcast_buffers": broadcast_buffers,
                         "find_unused_parameters": find_unused_parameters,
                         "forward_sync_buffers": forward_sync_buffers}


def test_data_parallel_passes_the_buffer_keyword_this_torch_knows(monkeypatch):
    module = torch.nn.Linear(2, 2)
    monkeypatch.setattr(torch.nn.parallel, "DistributedDataParallel", _OldDDP)
    assert comm.data_parallel(module, torch.device("cpu"), 0).keywords == {
        "device_ids": None, "broadcast_buffers": False, "find_unused_parameters": True}
    monkeypatch.setattr(torch.nn.parallel, "DistributedDataParallel", _NewDDP)
    assert comm.data_parallel(module, torch.device("cuda", 1), 1).keywords == {
        "device_ids": [1], "broadcast_buffers": None, "find_unused_parameters": True,
        "forward_sync_buffers": False}


def _batch_norm_statistics_with_and_without_ddp(rank, world_size):
    import copy
    import warnings

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.BatchNorm2d(2))
    alone = copy.deepcopy(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # no deprecated keyword on this torch
        wrapped = comm.data_parallel(model, torch.device("cpu"), rank)
    batch = (rank + 1.0) * torch.arange(4.0).view(1, 1, 2, 2)
    for _ in range(2):  # from the second forward on, synced buffers would be rank 0's
        wrapped(batch).sum().backward()
        alone(batch)
    return model[1].running_mean.tolist(), alone[1].running_mean.tolist()


def test_data_parallel_keeps_batch_norm_statistics_per_process(tmp_path):
    for with_ddp, alone in run_in_gloo_group(_batch_norm_statistics_with_and_without_ddp, tmp_path):
        assert with_ddp == pytest.approx(alone)  # this rank's own batches only
