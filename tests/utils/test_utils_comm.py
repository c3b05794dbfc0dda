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
