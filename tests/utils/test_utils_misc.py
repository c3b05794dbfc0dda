"""Logger, timer, environment hook, file helpers and the environment report."""
import json
import logging

import pytest

from maskrcnn_benchmark.config import cfg
from maskrcnn_benchmark.utils import env
from maskrcnn_benchmark.utils.collect_env import collect_env_info, get_pil_version
from maskrcnn_benchmark.utils.logger import setup_logger
from maskrcnn_benchmark.utils.miscellaneous import mkdir, save_config, save_labels
from maskrcnn_benchmark.utils.timer import Timer, get_time_str


def test_setup_logger_writes_to_file_once_and_silences_other_ranks(tmp_path, capsys):
    logger = setup_logger("mrcnn_test_logger", str(tmp_path), 0, filename="train_log.txt")
    logger = setup_logger("mrcnn_test_logger", str(tmp_path), 0, filename="train_log.txt")  # no duplicates
    logger.info("iteration 10")
    for handler in logger.handlers:
        handler.flush()
    lines = (tmp_path / "train_log.txt").read_text().splitlines()
    assert len(lines) == 1 and lines[0].endswith("mrcnn_test_logger INFO: iteration 10")
    assert capsys.readouterr().out.count("iteration 10") == 1

    other_rank = setup_logger("mrcnn_test_logger_rank1", str(tmp_path / "rank1"), 1)
    assert other_rank.handlers == []
    assert not (tmp_path / "rank1").exists()


def test_timer_averages_added_intervals():
    timer = Timer()
    timer.add(1.0)
    timer.add(3.0)
    assert timer.average_time == 2.0 and timer.calls == 2 and timer.diff == 3.0
    assert timer.avg_time_str() == "0:00:02"
    timer.tic()
    assert timer.toc(average=False) >= 0.0 and timer.calls == 3
    timer.reset()
    assert timer.average_time == 0.0
    assert get_time_str(3725.9) == "1:02:05"
    assert get_time_str(90000) == "1 day, 1:00:00"


def test_custom_environment_module_is_called(tmp_path, monkeypatch):
    marker = tmp_path / "called.txt"
    module_file = tmp_path / "site_env.py"
    module_file.write_text(f"def setup_environment():\n    open({str(marker)!r}, 'w').write('yes')\n")
    monkeypatch.setenv(env.ENV_MODULE_VARIABLE, str(module_file))
    env.setup_environment()
    assert marker.read_text() == "yes"

    broken = tmp_path / "broken_env.py"
    broken.write_text("x = 1\n")
    with pytest.raises(AttributeError, match="broken_env.py"):
        env.setup_custom_environment(str(broken))
    with pytest.raises(FileNotFoundError, match="missing_env.py"):
        env.setup_custom_environment(str(tmp_path / "missing_env.py"))
    monkeypatch.delenv(env.ENV_MODULE_VARIABLE)
    env.setup_environment()  # nothing configured: nothing happens


def test_mkdir_save_labels_and_save_config(tmp_path):
    target = tmp_path / "a" / "b"
    mkdir(str(target))
    mkdir(str(target))  # existing is fine
    assert target.is_dir()

    class Dataset:
        categories = {1: "person", 2: "bicycle"}

    class Unlabelled:
        pass

    save_labels([Dataset(), Unlabelled()], str(target))
    assert json.loads((target / "labels.json").read_text()) == {"1": "person", "2": "bicycle"}

    config_path = tmp_path / "config.yml"
    config = cfg.clone()
    config.MODEL.RPN.NMS_THRESH = 0.65
    save_config(config, str(config_path))
    reloaded = cfg.clone()
    reloaded.merge_from_file(str(config_path))
    assert reloaded.MODEL.RPN.NMS_THRESH == 0.65


def test_collect_env_info_reports_the_libraries():
    import PIL
    import torch

    info = collect_env_info()
    assert torch.__version__.split("+")[0] in info
    assert PIL.__version__ in get_pil_version()
    assert "pycocotools" in info and "maskrcnn_benchmark._C" in info
