"""Checkpoint files as files: permissions follow the umask, temporary files of killed writers are
cleaned up, only finite states are written, loads say how well the weights fit the model."""
import os
import socket
import subprocess
import sys

import pytest
import torch
from torch import nn

from maskrcnn_benchmark.config import cfg as global_cfg
from maskrcnn_benchmark.utils.checkpoint import (
    CheckpointError,
    Checkpointer,
    NonFiniteCheckpointError,
    NoWeightsError,
    remove_stale_temp_files,
    weights_to_evaluate,
)


def _model(seed=0, width=4):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, width), nn.ReLU(), nn.Linear(width, 2))


@pytest.fixture
def umask():
    def set_umask(value):
        os.umask(value)

    previous = os.umask(0o022)
    yield set_umask
    os.umask(previous)


@pytest.mark.parametrize("mask,expected", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_checkpoint_and_pointer_permissions_follow_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    Checkpointer(_model(), save_dir=str(tmp_path), save_to_disk=True).save("model_final", iteration=1)
    for name in ("model_final.pth", "last_checkpoint"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == expected, name


def _temp_name(target, pid, host=None):
    return f".{target}.tmp-{host or socket.gethostname()}-{pid}-0123abcd"


def _dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_temp_files_of_dead_writers_are_removed_at_the_next_save_and_load(tmp_path):
    dead, alive = _dead_pid(), os.getpid()
    leftovers = [_temp_name("model_0000004.pth", dead), _temp_name("last_checkpoint", dead)]
    kept = [_temp_name("model_0000008.pth", alive), _temp_name("model_0000008.pth", dead, "other-host"),
            "notes.tmp"]
    for name in leftovers + kept:
        (tmp_path / name).write_bytes(b"partial")
    checkpointer = Checkpointer(_model(), save_dir=str(tmp_path), save_to_disk=True)
    checkpointer.save("model_0000002", iteration=2)
    assert sorted(os.listdir(tmp_path)) == sorted(kept + ["last_checkpoint", "model_0000002.pth"])

    (tmp_path / leftovers[0]).write_bytes(b"partial")
    Checkpointer(_model(1), save_dir=str(tmp_path)).load()
    assert not (tmp_path / leftovers[0]).exists()


def test_remove_stale_temp_files_on_a_missing_folder_is_quiet(tmp_path):
    assert remove_stale_temp_files(str(tmp_path / "absent")) == []


def test_non_finite_weights_or_optimizer_state_are_never_written(tmp_path):
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    checkpointer = Checkpointer(model, optimizer, save_dir=str(tmp_path), save_to_disk=True)
    checkpointer.save("model_0000002", iteration=2)
    before = (tmp_path / "model_0000002.pth").read_bytes()

    with torch.no_grad():
        model[2].bias[1] = float("inf")
    with pytest.raises(NonFiniteCheckpointError, match=r"model_0000004.pth.*model\.2\.bias \(1 value"):
        checkpointer.save("model_0000004", iteration=4)
    with torch.no_grad():
        model[2].bias[1] = 0.0
    model(torch.ones(1, 3)).sum().backward()
    model[0].weight.grad[0, 0] = float("nan")
    optimizer.step()  # the momentum buffer (and the weight) take the NaN
    with pytest.raises(NonFiniteCheckpointError, match=r"momentum_buffer") as error:
        checkpointer.save("model_0000006", iteration=6)
    assert "model_0000002.pth" in str(error.value)  # the newest checkpoint is named, left as it was
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_0000002.pth"]
    assert (tmp_path / "model_0000002.pth").read_bytes() == before


def test_match_modes_refuse_weights_that_do_not_fit_before_touching_the_model(tmp_path):
    Checkpointer(_model(0), save_dir=str(tmp_path), save_to_disk=True).save("model_final")
    path = str(tmp_path / "model_final.pth")

    wider = _model(1, width=5)
    before = {k: v.clone() for k, v in wider.state_dict().items()}
    for match in ("parameters", "exact"):
        with pytest.raises(CheckpointError, match=r"model_final.pth.*shape\(s\) differ.*0.weight"):
            Checkpointer(wider).load(path, use_latest=False, match=match)
    assert all(torch.equal(before[k], v) for k, v in wider.state_dict().items())
    Checkpointer(wider).load(path, use_latest=False)  # "partial": what fits (nothing here), no error

    deeper = nn.Sequential(*_model(2), nn.Linear(2, 2))
    with pytest.raises(CheckpointError, match=r"2 of the model's 6 parameters are missing \(3.weight, 3.bias\)"):
        Checkpointer(deeper).load(path, use_latest=False, match="parameters")
    shallower = nn.Sequential(nn.Linear(3, 4))
    Checkpointer(shallower).load(path, use_latest=False, match="parameters")  # covers all its parameters
    with pytest.raises(CheckpointError, match=r"have no place in the model \(2.weight, 2.bias\)"):
        Checkpointer(shallower).load(path, use_latest=False, match="exact")


def test_weights_to_evaluate_looks_in_order_and_names_where_it_looked(tmp_path):
    cfg = global_cfg.clone()
    cfg.OUTPUT_DIR = str(tmp_path / "typo")
    with pytest.raises(NoWeightsError) as error:
        weights_to_evaluate(cfg, flag="--ckpt")
    message = str(error.value)
    assert str(tmp_path / "typo" / "last_checkpoint") in message and "MODEL.WEIGHT" in message
    assert "--random-weights" in message and "--ckpt" in message
    assert weights_to_evaluate(cfg, random_weights=True) is None
    with pytest.raises(ValueError, match="choose one"):
        weights_to_evaluate(cfg, "x.pth", random_weights=True)

    cfg.MODEL.WEIGHT = "catalog://ImageNetPretrained/MSRA/R-50"
    assert weights_to_evaluate(cfg) == cfg.MODEL.WEIGHT
    Checkpointer(_model(), save_dir=cfg.OUTPUT_DIR, save_to_disk=True).save("model_final")
    assert weights_to_evaluate(cfg) == str(tmp_path / "typo" / "model_final.pth")
    assert weights_to_evaluate(cfg, "mine.pth") == "mine.pth"
