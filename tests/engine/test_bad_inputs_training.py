"""The engine's part of the bad-inputs catalogue (docs/RELIABILITY.md, "Config, training,
checkpoints and distributed runs"): each case gets the correct result or an error naming the
culprit (file, key, value, folder, iteration), and nothing is lost: no file written or overwritten
by a run that refuses, the newest checkpoint intact and finite. The stopped / killed process cases
run two processes and live in test_distributed_runs.py."""
import errno
import os
import shutil
import signal
import subprocess
import sys

import pytest
import torch

from maskrcnn_benchmark.config import ConfigError
from maskrcnn_benchmark.engine.launch import init_distributed, load_config
from maskrcnn_benchmark.engine.resume import ResumeError
from maskrcnn_benchmark.engine.run_lock import OutputDirLock, OutputDirLockedError
from maskrcnn_benchmark.engine.trainer import NonFiniteLossError, SimpleTrainer
from maskrcnn_benchmark.solver import check_solver_config, make_optimizer
from maskrcnn_benchmark.utils import checkpoint as checkpoint_module
from maskrcnn_benchmark.utils.checkpoint import CheckpointError, Checkpointer, NonFiniteCheckpointError
from maskrcnn_benchmark.utils.device import DeviceError

from toy_detection import ToyDetector, seed_everything, toy_cfg, toy_loader, train_toy

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "configs", "shapes", "retinanet_R-18-FPN_shapes.yaml")
sys.path.insert(0, os.path.join(ROOT, "tools"))
import test_net  # noqa: E402


def _model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))


def _files(folder):
    """Every file under ``folder`` with its bytes (what a refused run must leave untouched)."""
    found = {}
    for directory, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(directory, name)
            with open(path, "rb") as handle:
                found[os.path.relpath(path, folder)] = handle.read()
    return found


_FINISHED = {}


@pytest.fixture
def run_copy(train_net, tmp_path_factory, tmp_path):
    """A copy of a 4-iteration train_net run (checkpoints at 2 and 4), trained once per module."""
    if "run" not in _FINISHED:
        _FINISHED["run"] = tmp_path_factory.mktemp("finished") / "run"
        train_net(_FINISHED["run"], "SOLVER.MAX_ITER", 4)
    copy = tmp_path / "run"
    shutil.copytree(_FINISHED["run"], copy)
    return copy


# ------------------------------------------------------------------------------------ config

def test_unknown_key_in_a_yaml_names_file_and_key_and_writes_nothing(train_net, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"_BASE_: {CONFIG}\nSOLVER:\n  MAX_ITERS: 10\n")
    with pytest.raises(ConfigError, match=rf"{bad}.*SOLVER.MAX_ITERS"):
        train_net(tmp_path / "out", config=str(bad))
    assert not (tmp_path / "out").exists()


def test_wrong_type_override_names_the_key(train_net, tmp_path):
    with pytest.raises(ConfigError, match=r"SOLVER.MAX_ITER"):
        train_net(tmp_path / "out", "SOLVER.MAX_ITER", "many")
    assert not (tmp_path / "out").exists()


def test_missing_yaml_names_the_path(train_net, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"config file not found: .*nope.yaml"):
        train_net(tmp_path / "out", config=str(tmp_path / "nope.yaml"))


def test_base_cycle_names_the_files(train_net, tmp_path):
    (tmp_path / "a.yaml").write_text("_BASE_: b.yaml\n")
    (tmp_path / "b.yaml").write_text("_BASE_: a.yaml\n")
    with pytest.raises(ConfigError, match=r"_BASE_ cycle through .*a.yaml"):
        train_net(tmp_path / "out", config=str(tmp_path / "a.yaml"))


def test_steps_not_increasing_is_refused_before_anything_is_written(train_net, tmp_path):
    with pytest.raises(ValueError, match=r"SOLVER.STEPS.*\[10, 5\]"):
        train_net(tmp_path / "out", "SOLVER.STEPS", "(10, 5)")
    with pytest.raises(ValueError, match=r"SOLVER.STEPS.*\[5, 5\]"):
        train_net(tmp_path / "out", "SOLVER.STEPS", "(5, 5)")
    assert not (tmp_path / "out").exists()


def test_batch_not_divisible_by_the_processes_names_the_key():
    cfg = load_config(CONFIG, ["SOLVER.IMS_PER_BATCH", "8"])
    check_solver_config(cfg, world_size=4)
    with pytest.raises(ValueError, match=r"SOLVER.IMS_PER_BATCH \(8\).*number of processes \(3\)"):
        check_solver_config(cfg, world_size=3)
    with pytest.raises(ValueError, match=r"SOLVER.BASE_LR must be > 0, got -0.1"):
        check_solver_config(load_config(CONFIG, ["SOLVER.BASE_LR", "-0.1"]))


def test_cuda_asked_for_on_a_machine_without_one_names_model_device(train_net, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceError, match=r"MODEL.DEVICE is 'cuda' but no CUDA device is usable"):
        train_net(tmp_path / "out", "MODEL.DEVICE", "cuda")
    assert not (tmp_path / "out").exists()


def test_unknown_dtype_is_refused_before_the_first_step(tmp_path):
    with pytest.raises(ValueError, match=r"DTYPE must be one of .*'fp16'"):
        train_toy(toy_cfg(tmp_path, 4, 2, "DTYPE", "fp16"), ToyDetector())
    assert not any(name.endswith(".pth") for name in os.listdir(tmp_path))


def test_non_positive_collective_timeout_is_refused(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match=r"DIST_TIMEOUT_MINUTES must be > 0, got 0.0"):
        init_distributed(load_config(CONFIG, ["DIST_TIMEOUT_MINUTES", "0.0", "MODEL.DEVICE", "cpu"]), 0)


# ---------------------------------------------------------------------------------- training

def test_nan_loss_at_iteration_k_stops_naming_it_and_the_finite_newest_checkpoint(tmp_path):
    seed_everything(0)
    with pytest.raises(NonFiniteLossError) as error:
        train_toy(toy_cfg(tmp_path, 8, 2), ToyDetector(nan_at_call=3))
    message = str(error.value)
    assert "non-finite loss at iteration 3: total=nan" in message and "loss_cls=nan" in message
    assert f"the newest checkpoint, {tmp_path / 'model_0000002.pth'} (iteration 2), holds finite values" in message
    saved = torch.load(tmp_path / "model_0000002.pth", weights_only=True)
    assert all(torch.isfinite(v).all() for v in saved["model"].values())


def test_finite_loss_with_infinite_gradient_never_writes_a_non_finite_checkpoint(tmp_path):
    """The update of iteration 4 ruins the weights while its loss is finite: the checkpoint due at 4
    is refused (it used to be written, and every resume from it failed again)."""
    seed_everything(0)
    with pytest.raises(NonFiniteCheckpointError) as error:
        train_toy(toy_cfg(tmp_path, 8, 2), ToyDetector(inf_grad_at_call=4))
    message = str(error.value)
    assert f"refusing to write {tmp_path / 'model_0000004.pth'}" in message
    assert f"newest checkpoint left as it was: {tmp_path / 'model_0000002.pth'}" in message
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000002.pth"
    assert sorted(n for n in os.listdir(tmp_path) if n.endswith(".pth")) == ["model_0000002.pth"]
    resumed = train_toy(toy_cfg(tmp_path, 8, 2), ToyDetector())  # the newest checkpoint resumes
    assert all(torch.isfinite(p).all() for p in resumed.model.parameters())


def test_divergence_between_checkpoints_reports_the_last_finite_one_truthfully(tmp_path):
    seed_everything(0)
    with pytest.raises(NonFiniteLossError, match=r"iteration 5.*model_0000003.pth \(iteration 3\), holds finite"):
        train_toy(toy_cfg(tmp_path, 8, 3), ToyDetector(inf_grad_at_call=4))
    saved = torch.load(tmp_path / "model_0000003.pth", weights_only=True)
    assert all(torch.isfinite(v).all() for v in saved["model"].values())


def test_a_non_finite_newest_checkpoint_written_elsewhere_is_not_vouched_for(tmp_path):
    model = ToyDetector()
    with torch.no_grad():
        model.box.bias[0] = float("nan")
    torch.save({"model": model.state_dict(), "iteration": 2}, tmp_path / "model_0000002.pth")
    (tmp_path / "last_checkpoint").write_text("model_0000002.pth")
    with pytest.raises(NonFiniteLossError, match=r"the newest checkpoint is not finite either .*box.bias"):
        train_toy(toy_cfg(tmp_path, 4, 0), ToyDetector(nan_at_call=1), resume=False)


def test_a_model_without_loss_entries_is_named(tmp_path):
    class DiagnosticsOnly(ToyDetector):
        def forward(self, images, targets=None):
            return {"sf_only": super().forward(images, targets)["sf_test_g"]}

    model = DiagnosticsOnly()
    trainer = SimpleTrainer(model, toy_loader(toy_cfg(tmp_path, 2, 0)), make_optimizer(toy_cfg(tmp_path), model))
    with pytest.raises(KeyError, match=r"no entry starting with 'loss': keys are \['sf_only'\]"):
        trainer.train(0, 2)


# ------------------------------------------------------------------------------- checkpoints

def test_corrupt_last_checkpoint_names_the_file_and_changes_nothing(train_net, run_copy):
    (run_copy / "model_final.pth").write_bytes(os.urandom(4096))
    before = _files(run_copy)
    with pytest.raises(CheckpointError, match=r"cannot read checkpoint .*model_final.pth: the file is truncated, corrupt"):
        train_net(run_copy, "SOLVER.MAX_ITER", 6, flags=["--resume"])
    assert _files(run_copy) == before


def test_truncated_last_checkpoint_names_the_file(train_net, run_copy):
    data = (run_copy / "model_final.pth").read_bytes()
    (run_copy / "model_final.pth").write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match=r"model_final.pth: the file is truncated"):
        train_net(run_copy, "SOLVER.MAX_ITER", 6, flags=["--resume"])
    assert (run_copy / "model_0000002.pth").stat().st_size > 0  # the older checkpoint is still there


class _RunsCode(object):
    def __init__(self, sentinel):
        self.sentinel = sentinel

    def __reduce__(self):
        return (os.system, (f"touch {self.sentinel}",))


def test_unsafe_pickle_is_refused_without_running_its_code(tmp_path):
    sentinel = tmp_path / "code-ran"
    torch.save({"model": ToyDetector().state_dict(), "payload": _RunsCode(sentinel)}, tmp_path / "model_final.pth")
    (tmp_path / "last_checkpoint").write_text("model_final.pth")
    with pytest.raises(CheckpointError, match=r"model_final.pth: .*not a weights-only PyTorch checkpoint"):
        Checkpointer(ToyDetector(), save_dir=str(tmp_path)).load()
    assert not sentinel.exists()


def test_checkpoint_of_another_architecture_is_refused_for_resume(tmp_path):
    train_toy(toy_cfg(tmp_path, 2, 2), ToyDetector())
    other = ToyDetector()
    other.score = torch.nn.Linear(64, 3)
    with pytest.raises(CheckpointError, match=r"model_final.pth does not fit this model: 2 shape\(s\) differ \(score"):
        train_toy(toy_cfg(tmp_path, 4, 2), other)


def test_non_finite_weights_in_a_checkpoint_to_load_are_named(tmp_path):
    model = ToyDetector()
    with torch.no_grad():
        model.score.weight[0, 3] = float("inf")
    torch.save({"model": model.state_dict(), "iteration": 2}, tmp_path / "model_0000002.pth")
    (tmp_path / "last_checkpoint").write_text("model_0000002.pth")
    with pytest.raises(NonFiniteCheckpointError, match=r"model_0000002.pth cannot be used: .*score.weight \(1 value"):
        train_toy(toy_cfg(tmp_path, 4, 2), ToyDetector())


def test_last_checkpoint_naming_a_missing_file_is_named(train_net, run_copy):
    (run_copy / "model_final.pth").unlink()
    with pytest.raises(ResumeError, match=r"last_checkpoint names .*model_final.pth, which does not exist"):
        train_net(run_copy, "SOLVER.MAX_ITER", 6, flags=["--resume"])


def test_checkpoints_without_a_pointer_are_not_guessed(train_net, run_copy):
    (run_copy / "last_checkpoint").unlink()
    with pytest.raises(ResumeError, match=r"holds model_0000002.pth, model_final.pth but no last_checkpoint"):
        train_net(run_copy, "SOLVER.MAX_ITER", 6, flags=["--resume"])
    with pytest.raises(ResumeError, match=r"already holds checkpoints"):  # nor overwritten without --resume
        train_net(run_copy, "SOLVER.MAX_ITER", 6)


def test_kill_9_during_a_write_leaves_the_old_checkpoint_and_a_temp_file_the_next_save_removes(tmp_path):
    """A real writer killed mid-write (the write blocks on a pipe so the kill lands inside it)."""
    Checkpointer(_model(), save_dir=str(tmp_path), save_to_disk=True).save("model_final", iteration=2)
    before = (tmp_path / "model_final.pth").read_bytes()
    script = (
        "import os, sys, torch\n"
        "from maskrcnn_benchmark.utils.checkpoint import _write_atomically\n"
        "def write(out):\n"
        "    out.write(b'half a checkpoint'); out.flush()\n"
        "    print('writing', flush=True); sys.stdin.read()\n"
        f"_write_atomically({str(tmp_path / 'model_final.pth')!r}, write)\n"
    )
    writer = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": ROOT})
    assert writer.stdout.readline().strip() == b"writing"
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    temp_files = [n for n in os.listdir(tmp_path) if n.startswith(".model_final.pth.tmp-")]
    assert len(temp_files) == 1
    assert (tmp_path / "model_final.pth").read_bytes() == before
    assert Checkpointer(_model(3), save_dir=str(tmp_path)).load()["iteration"] == 2
    assert not (tmp_path / temp_files[0]).exists()




def test_full_disk_during_a_write_names_the_file_and_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    checkpointer = Checkpointer(_model(), save_dir=str(tmp_path), save_to_disk=True)
    checkpointer.save("model_final", iteration=2)
    before = (tmp_path / "model_final.pth").read_bytes()

    def full_disk(obj, out, *args, **kwargs):
        out.write(b"x" * 100)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint_module.torch, "save", full_disk)
    with pytest.raises(OSError, match=r"cannot write .*model_final.pth: no space left on device") as error:
        checkpointer.save("model_final", iteration=4)
    assert error.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_final.pth"]  # no temp file
    assert (tmp_path / "model_final.pth").read_bytes() == before
    assert Checkpointer(_model(1), save_dir=str(tmp_path)).load()["iteration"] == 2


# ------------------------------------------------------------------------------ runs, folders

def test_two_runs_in_one_folder_the_second_is_refused_naming_the_folder(train_net, run_copy):
    before = _files(run_copy)
    with OutputDirLock(str(run_copy)):
        with pytest.raises(OutputDirLockedError, match=rf"OUTPUT_DIR {run_copy} is in use by another training run "
                                                       rf"\(pid {os.getpid()}"):
            train_net(run_copy, "SOLVER.MAX_ITER", 6, flags=["--resume"])
    assert _files(run_copy) == before


def test_read_only_output_dir_is_named(train_net, tmp_path, monkeypatch):
    """A read-only file system (simulated: these tests may run as root, which ignores permission bits)."""
    import maskrcnn_benchmark.engine.run_lock as run_lock

    real_open = os.open

    def read_only(path, flags, *args):
        if str(path).startswith(str(tmp_path / "ro")) and flags & os.O_CREAT:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)
        return real_open(path, flags, *args)

    (tmp_path / "ro").mkdir()
    monkeypatch.setattr(run_lock.os, "open", read_only)
    with pytest.raises(OSError, match=rf"OUTPUT_DIR {tmp_path / 'ro'} is not writable \(Read-only file system"):
        train_net(tmp_path / "ro", "SOLVER.MAX_ITER", 2)
    monkeypatch.undo()
    assert os.listdir(tmp_path / "ro") == []


def test_max_iter_below_the_resumed_iteration_names_both(train_net, run_copy):
    before = _files(run_copy)
    with pytest.raises(ResumeError, match=r"SOLVER.MAX_ITER 2 is below the iteration of the checkpoint to continue "
                                          r"\(.*model_final.pth: iteration 4\)"):
        train_net(run_copy, "SOLVER.MAX_ITER", 2, flags=["--resume"])
    assert _files(run_copy) == before


def test_resuming_a_finished_run_trains_nothing_and_says_so(train_net, run_copy):
    weights = (run_copy / "model_final.pth").read_bytes()
    train_net(run_copy, "SOLVER.MAX_ITER", 4, flags=["--resume"])
    assert "Training is already complete at iteration 4: nothing left to train" in (run_copy / "log.txt").read_text()
    assert (run_copy / "model_final.pth").read_bytes() == weights


# --------------------------------------------------------------------------------- inference

def test_test_net_with_a_missing_ckpt_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"checkpoint file not found: .*missing.pth"):
        test_net.main(["--config-file", CONFIG, "--ckpt", str(tmp_path / "missing.pth"), "OUTPUT_DIR", str(tmp_path)])
