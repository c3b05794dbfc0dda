"""Command-line tools: config overrides, train_net + test_net end to end on the generated shapes
dataset, kill -9 and restart, torchrun with two CPU processes, plot_metrics."""
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time

import cv2
import pytest
import torch

from maskrcnn_benchmark.config import ConfigError
from maskrcnn_benchmark.engine.launch import load_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYTHON = sys.executable
TORCHRUN = os.path.join(os.path.dirname(sys.executable), "torchrun")
RETINANET_SHAPES = os.path.join(ROOT, "configs", "shapes", "retinanet_R-18-FPN_shapes.yaml")
sys.path.insert(0, os.path.join(ROOT, "tools"))
import plot_metrics  # noqa: E402


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Subprocess environment: one CPU thread, the shapes data in a temporary folder."""
    environment = dict(os.environ)
    environment.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                       MASKRCNN_DATA_DIR=str(tmp_path_factory.mktemp("data")), PYTHONPATH=ROOT)
    return environment


def _run(args, env, timeout=900):  # generous: the CI machine may be shared
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def _train_cmd(output_dir, *overrides, flags=()):
    return [PYTHON, "tools/train_net.py", "--config-file", RETINANET_SHAPES, *flags,
            "OUTPUT_DIR", str(output_dir), *[str(o) for o in overrides]]


def test_unknown_override_key_is_named():
    with pytest.raises(ConfigError, match="SOLVER.NOT_A_KEY"):
        load_config(RETINANET_SHAPES, ["SOLVER.NOT_A_KEY", "3"])
    cfg = load_config(RETINANET_SHAPES, ["SOLVER.MAX_ITER", "7"])
    assert cfg.SOLVER.MAX_ITER == 7 and cfg.MODEL.RETINANET_ON and cfg.is_frozen()


def test_train_net_cli_reports_unknown_key(env):
    done = subprocess.run(_train_cmd("/nonexistent", "MODEL.NO_SUCH_KEY", 1), cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "MODEL.NO_SUCH_KEY" in done.stderr


def _write_metrics(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_plot_metrics_panels_and_png(tmp_path):
    records = [
        {"iteration": 20, "loss_objectness": 0.7, "loss_rpn_box_reg": 0.2, "loss_classifier": 1.0,
         "loss_box_reg": 0.5, "sf_rpn_g": 0.3, "sf_roi_g": 0.5, "sf_rpn_delta": 1.0, "sf_rpn_cls_grad_norm": 2.0},
        {"iteration": 40, "loss_objectness": 0.5, "loss_rpn_box_reg": 0.1, "loss_classifier": 0.8,
         "loss_box_reg": 0.4, "sf_rpn_g": 0.2, "sf_roi_g": 0.5, "sf_rpn_delta": 1.1, "sf_rpn_cls_grad_norm": 1.5},
        # a resumed run logs iteration 40 again: the last record wins
        {"iteration": 40, "loss_objectness": 0.45},
    ]
    metrics = tmp_path / "metrics.json"
    _write_metrics(metrics, records)
    loaded = plot_metrics.load_metrics(str(metrics))
    assert [r["iteration"] for r in loaded] == [20, 40] and loaded[1]["loss_objectness"] == 0.45
    panels = dict(plot_metrics.panels_for(loaded))
    assert [k for _, k in panels["RPN"]] == ["loss_objectness", "loss_rpn_box_reg"]
    assert [k for _, k in panels["RoI box head"]] == ["loss_classifier", "loss_box_reg"]
    assert [name for name, _ in panels["guidance ratio g = L_loc / L_cls"]] == ["roi", "rpn"]
    assert [k for _, k in panels["learned delta"]] == ["sf_rpn_delta"]
    assert [k for _, k in panels["classification-layer gradient norm"]] == ["sf_rpn_cls_grad_norm"]
    assert "RetinaNet" not in panels

    png = tmp_path / "curves.png"
    plot_metrics.main([str(metrics), "--output", str(png)])
    image = cv2.imread(str(png))
    assert image is not None and image.shape[0] > image.shape[1]  # five stacked panels

    (tmp_path / "bad.json").write_text('{"iteration": 1}\nnot json\n')
    with pytest.raises(ValueError, match=r"bad.json:2"):
        plot_metrics.load_metrics(str(tmp_path / "bad.json"))


# measured on 2 shared CPU cores: RetinaNet R-18 GN shapes, 150 iterations of 8 images, lr step
# at 120 (~2.5 min with evaluation): shapes_val bbox AP 0.120. The floor leaves room for
# thread-count / platform differences in floating-point results.
E2E_ITERATIONS = 150
E2E_AP_FLOOR = 0.08


@pytest.mark.slow
def test_train_net_then_test_net_reach_stated_ap(tmp_path, env):
    out = tmp_path / "run"
    _run(_train_cmd(out, "SOLVER.MAX_ITER", E2E_ITERATIONS, "SOLVER.STEPS", "(120,)", "SOLVER.WARMUP_ITERS", 50,
                    "SOLVER.CHECKPOINT_PERIOD", 100, "SOLVER.LOG_PERIOD", 50), env)
    assert sorted(p.name for p in out.glob("*.pth")) == ["model_0000100.pth", "model_final.pth"]
    assert (out / "last_checkpoint").read_text() == "model_final.pth"
    assert (out / "config.yml").exists() and (out / "log.txt").exists()
    records = [json.loads(line) for line in (out / "metrics.json").read_text().splitlines()]
    assert [r["iteration"] for r in records] == [50, 100, 150]
    assert records[-1]["loss_retina_cls"] < records[0]["loss_retina_cls"]

    train_metrics = json.loads((out / "inference" / "shapes_val" / "metrics.json").read_text())
    output = _run([PYTHON, "tools/test_net.py", "--config-file", RETINANET_SHAPES, "--ckpt",
                   str(out / "model_final.pth"), "OUTPUT_DIR", str(tmp_path / "test")], env)
    ap = float(re.search(r"\(AP\) @\[ IoU=0.50:0.95 \| area=   all \| maxDets=100 \] = (-?[0-9.]+)", output).group(1))
    print(f"shapes_val bbox AP after {E2E_ITERATIONS} iterations: {ap:.3f}")
    assert ap >= E2E_AP_FLOOR
    # test_net on the final checkpoint reproduces the evaluation that ended training
    assert train_metrics["results"]["bbox"]["AP"] == pytest.approx(ap, abs=1e-3)


def _final_weights(path):
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


@pytest.mark.slow
def test_kill_9_and_restart_matches_uninterrupted_run(tmp_path, env):
    overrides = ["SOLVER.MAX_ITER", 12, "SOLVER.CHECKPOINT_PERIOD", 4, "SOLVER.IMS_PER_BATCH", 4,
                 "SOLVER.WARMUP_ITERS", 4, "SOLVER.STEPS", "(9,)", "SOLVER.LOG_PERIOD", 2]
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    _run(_train_cmd(straight, *overrides, flags=["--skip-test"]), env)

    command = _train_cmd(killed, *overrides, flags=["--skip-test"])
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.time() + 600
    while not (killed / "last_checkpoint").exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "training finished before it could be killed"
    assert not (killed / "model_final.pth").exists()
    assert (killed / "last_checkpoint").read_text().startswith("model_0000")
    assert (killed / "train.lock").exists()  # the killed run could not release it

    # the restart continues explicitly (--resume, accepted after the overrides) and takes the stale lock over
    output = _run(command + ["--resume"], env)
    assert "ended without releasing it (killed?); taking it over" in output
    assert not (killed / "train.lock").exists()
    expected, resumed = _final_weights(straight / "model_final.pth"), _final_weights(killed / "model_final.pth")
    assert expected.keys() == resumed.keys()
    for name in expected:
        assert torch.equal(expected[name], resumed[name]), name


@pytest.mark.slow
def test_torchrun_two_cpu_processes_train_checkpoint_and_evaluate(tmp_path, env):
    out = tmp_path / "ddp"
    command = [TORCHRUN, "--standalone", "--nproc_per_node=2", "tools/train_net.py", "--config-file",
               RETINANET_SHAPES, "OUTPUT_DIR", str(out), "MODEL.DEVICE", "cpu", "SOLVER.MAX_ITER", 6,
               "SOLVER.CHECKPOINT_PERIOD", 3, "SOLVER.IMS_PER_BATCH", 4, "SOLVER.LOG_PERIOD", 3,
               "TEST.IMS_PER_BATCH", 16]
    _run([str(c) for c in command], env)
    # rank 0 alone writes: one file per checkpoint, no leftovers (event files only with tensorboard,
    # an optional feature the torch-version smoke venvs leave out)
    expected = ["config.yml", "inference", "last_checkpoint", "log.txt", "metrics.json", "model_0000003.pth",
                "model_final.pth"] + (["tensorboard"] if importlib.util.find_spec("tensorboard") else [])
    assert sorted(os.listdir(out / ".")) == sorted(expected)
    log = (out / "log.txt").read_text()
    assert log.count("Saving checkpoint to") == 2
    assert "train_net: using 2 process(es)" in log
    # each process predicted half of the 64 validation images; rank 0 evaluated all of them
    assert "Gathered predictions for 64 images from 2 process(es)" in log
    assert (out / "inference" / "shapes_val" / "metrics.json").exists()
    records = [json.loads(line) for line in (out / "metrics.json").read_text().splitlines()]
    assert [r["iteration"] for r in records] == [3, 6]
