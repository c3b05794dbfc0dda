"""tools/train_net.py in process on the shapes RetinaNet: explicit resume, config changes reported
before anything is written, the console line, log.txt contents, the command line itself."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "configs", "shapes", "retinanet_R-18-FPN_shapes.yaml")
sys.path.insert(0, os.path.join(ROOT, "tools"))
import train_net  # noqa: E402

from maskrcnn_benchmark.engine.resume import ResumeError  # noqa: E402



@pytest.fixture
def run(train_net):
    def train(output_dir, *overrides, resume=False):
        train_net(output_dir, *overrides, flags=["--resume"] if resume else [])

    return train


def _snapshot(folder):
    return {name: (folder / name).read_bytes() for name in sorted(os.listdir(folder)) if (folder / name).is_file()}


def _records(folder):
    return [json.loads(line) for line in (folder / "metrics.json").read_text().splitlines()]


def test_rerun_into_a_folder_with_checkpoints_needs_resume_and_writes_nothing(run, tmp_path):
    out = tmp_path / "run"
    run(out, "SOLVER.MAX_ITER", 2)
    before = _snapshot(out)
    with pytest.raises(ResumeError, match=rf"OUTPUT_DIR {out} already holds checkpoints.*--resume.*another OUTPUT_DIR"):
        run(out, "SOLVER.MAX_ITER", 4, "SOLVER.BASE_LR", 0.02)
    assert _snapshot(out) == before  # config.yml, log.txt, metrics.json, checkpoints untouched


def test_resume_reports_the_schedule_change_and_trains_on_it(run, tmp_path):
    out = tmp_path / "run"
    run(out, "SOLVER.MAX_ITER", 2)
    run(out, "SOLVER.MAX_ITER", 4, "SOLVER.BASE_LR", 0.02, resume=True)
    log = (out / "log.txt").read_text()
    assert f"Resuming from {out / 'model_final.pth'} at iteration 2 of 4" in log
    assert "Schedule changed since the checkpoint: SOLVER.BASE_LR 0.01 -> 0.02; SOLVER.MAX_ITER 2 -> 4; " \
           "the new schedule applies from iteration 2" in log
    # warm-up over 2 iterations is over: iterations 3 and 4 run at the new base lr
    assert [(r["iteration"], r["lr"]) for r in _records(out)] == [(2, pytest.approx(0.01 * (1 / 3 * 0.5 + 0.5))),
                                                                   (4, pytest.approx(0.02))]
    assert "BASE_LR: 0.02" in (out / "config.yml").read_text()


def test_resume_with_another_architecture_is_refused_before_config_yml_changes(run, tmp_path):
    out = tmp_path / "run"
    run(out, "SOLVER.MAX_ITER", 2)
    before = _snapshot(out)
    with pytest.raises(ResumeError, match=r"trained another model \(MODEL.RETINANET.NUM_CLASSES 5 -> 7\).*"
                                          r"rpn.head.cls_logits.weight"):
        run(out, "SOLVER.MAX_ITER", 4, "MODEL.RETINANET.NUM_CLASSES", 7, resume=True)
    after = _snapshot(out)
    assert after.pop("log.txt").startswith(before.pop("log.txt"))  # the refusal is logged, nothing else changes
    assert after == before


def test_resume_with_nothing_to_resume_starts_at_zero_and_says_so(run, tmp_path):
    out = tmp_path / "fresh"
    run(out, "SOLVER.MAX_ITER", 2, resume=True)
    assert f"--resume: no checkpoint in OUTPUT_DIR {out}; starting a new run at iteration 0" in (out / "log.txt").read_text()
    assert [r["iteration"] for r in _records(out)] == [2]


def test_console_gets_short_lines_and_log_txt_the_environment_and_config(run, tmp_path, capsys):
    out = tmp_path / "run"
    run(out, "SOLVER.MAX_ITER", 4)
    console = capsys.readouterr().out
    log = (out / "log.txt").read_text()
    for detail in ("PyTorch version", "Running with config:", "Loaded configuration file"):
        assert detail in log and detail not in console, detail
    lines = [line for line in console.splitlines() if " iter: " in line]
    assert len(lines) == 2 and all(len(line) < 200 for line in lines)
    assert all("sf_retina" not in line and "retina_cls" in line and "lr: " in line for line in lines)


def test_flags_may_follow_the_overrides():
    args = train_net.build_parser().parse_intermixed_args(
        ["--config-file", CONFIG, "SOLVER.MAX_ITER", "10", "--resume", "SOLVER.STEPS", "(-1, 5)", "--skip-test"])
    assert args.resume and args.skip_test and args.opts == ["SOLVER.MAX_ITER", "10", "SOLVER.STEPS", "(-1, 5)"]


@pytest.mark.parametrize("tool", ["train_net.py", "test_net.py"])
def test_help_answers_without_importing_torch(tool, tmp_path):
    """--help must not pay for torch: with a ``torch`` that cannot be imported it still answers."""
    fake = tmp_path / "torch"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('torch imported before argparse answered')\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    done = subprocess.run([sys.executable, os.path.join(ROOT, "tools", tool), "--help"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "--config-file" in done.stdout and "KEY VALUE" in done.stdout
