import statistics

import pytest
import torch

from maskrcnn_benchmark.utils.metric_logger import MetricLogger, SmoothedValue


def test_smoothed_value_window_statistics():
    values = [5.0, 1.0, 4.0, 2.0, 8.0, 3.0, 7.0]
    smoothed = SmoothedValue(window_size=4)
    for value in values:
        smoothed.update(value)
    window = values[-4:]
    assert smoothed.avg == pytest.approx(statistics.mean(window))
    assert smoothed.median in window  # torch's median picks the lower middle value
    assert smoothed.median == sorted(window)[(len(window) - 1) // 2]
    assert smoothed.global_avg == pytest.approx(statistics.mean(values))
    assert smoothed.value == 7.0
    assert smoothed.count == len(values)


def test_metric_logger_accepts_tensors_and_numbers_and_formats_them():
    logger = MetricLogger(delimiter="  ")
    logger.update(loss=torch.tensor(2.0), time=0.5)
    logger.update(loss=torch.tensor([4.0]), time=1)
    assert logger.loss.global_avg == pytest.approx(3.0)
    assert logger.time.value == 1.0
    text = str(logger)
    assert text.split("  ") == ["loss: 2.0000 (3.0000)", "time: 0.5000 (0.7500)"]
    with pytest.raises(AttributeError, match="nonexistent"):
        logger.nonexistent


def test_metric_logger_rejects_non_scalars_naming_the_metric():
    logger = MetricLogger()
    with pytest.raises(ValueError, match="loss_box_reg"):
        logger.update(loss_box_reg=torch.ones(3))
    with pytest.raises(TypeError, match="lr"):
        logger.update(lr="0.01")
