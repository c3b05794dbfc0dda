"""tools/quickstart.sh itself, end to end on a short run: the shell plumbing between its steps
(dataset, training, evaluation, curves, summary, picture) that no unit test of those steps sees."""
import os
import subprocess
import sys

import pytest

from helpers import ROOT


def run_quickstart(output_dir, data_dir, **env):
    environment = dict(os.environ, SKIP_SETUP="1", PY=sys.executable, ITERS="12", IMAGES="2", OMP_NUM_THREADS="1",
                       OUTPUT_DIR=str(output_dir), MASKRCNN_DATA_DIR=str(data_dir), PYTHONPATH=ROOT, **env)
    return subprocess.run(["bash", os.path.join("tools", "quickstart.sh")], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def refused_picture_run(tmp_path_factory):
    """A 12-iteration quickstart whose picture threshold (1.01) no score can reach."""
    output_dir = tmp_path_factory.mktemp("quickstart") / "run"
    data_dir = tmp_path_factory.mktemp("quickstart_data")
    return output_dir, data_dir, run_quickstart(output_dir, data_dir, CONFIDENCE="1.01")


def test_every_step_runs_and_an_empty_picture_fails_the_command(refused_picture_run):
    output_dir, _, done = refused_picture_run
    printed = done.stdout + done.stderr
    assert done.returncode != 0, printed[-3000:]
    assert "no detection with score >= 1.01" in printed, printed[-3000:]
    # every step before the picture ran and reported
    assert "iter: 12/12" in printed and "Average Precision" in printed, printed[-3000:]
    assert f"== {output_dir}: shapes_val COCO box AP " in printed, printed[-3000:]
    assert "per class AP: square " in printed, printed[-3000:]
    for name in ("model_final.pth", "loss_curves.png", "detections.png",
                 os.path.join("inference", "shapes_val", "metrics.json")):
        assert (output_dir / name).is_file(), name


def test_rerunning_into_the_same_output_dir_is_refused_not_continued(refused_picture_run):
    output_dir, data_dir, _ = refused_picture_run
    weights = output_dir / "model_final.pth"
    before = weights.stat().st_mtime_ns
    done = run_quickstart(output_dir, data_dir, RESUME="0")
    printed = done.stdout + done.stderr
    assert done.returncode != 0, printed[-3000:]
    assert "already holds checkpoints" in printed and "training failed" in printed, printed[-3000:]
    assert "iter: " not in printed  # nothing trained
    assert weights.stat().st_mtime_ns == before
