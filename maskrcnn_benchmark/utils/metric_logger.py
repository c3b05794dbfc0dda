"""Smoothed training metrics (losses, times) and their one-line summary for the log."""
from collections import defaultdict, deque

import torch


class SmoothedValue(object):
    """A series of values: the last ``window_size`` give the smoothed ``median`` and ``avg``,
    all of them the ``global_avg``; ``value`` is the latest."""

    def __init__(self, window_size=20):
        self.deque = deque(maxlen=window_size)
        self.total = 0.0
        self.count = 0

    def update(self, value):
        self.deque.append(value)
        self.count += 1
        self.total += value

    @property
    def median(self):
        return torch.tensor(list(self.deque), dtype=torch.float64).median().item()

    @property
    def avg(self):
        return torch.tensor(list(self.deque), dtype=torch.float64).mean().item()

    @property
    def global_avg(self):
        return self.total / self.count

    @property
    def value(self):
        return self.deque[-1]


class MetricLogger(object):
    """One SmoothedValue per metric name; ``str()`` gives ``name: median (global_avg)`` entries
    joined by ``delimiter``. Meters are also readable as attributes (``logger.loss``)."""

    def __init__(self, delimiter="\t"):
        self.meters = defaultdict(SmoothedValue)
        self.delimiter = delimiter

    def update(self, **kwargs):
        for name, value in kwargs.items():
            if isinstance(value, torch.Tensor):
                if value.numel() != 1:
                    raise ValueError(f"MetricLogger.update: {name} must be a scalar, got shape {tuple(value.shape)}")
                value = value.item()
            if not isinstance(value, (float, int)):
                raise TypeError(f"MetricLogger.update: {name} must be a number or a scalar tensor, got {type(value).__name__}")
            self.meters[name].update(float(value))

    def __getattr__(self, attr):
        # Only reached when normal lookup fails: expose the meters as attributes.
        meters = self.__dict__.get("meters", {})
        if attr in meters:
            return meters[attr]
        raise AttributeError(f"{type(self).__name__} has no attribute or meter {attr!r}")

    def __str__(self):
        return self.delimiter.join(
            f"{name}: {meter.median:.4f} ({meter.global_avg:.4f})" for name, meter in self.meters.items()
        )
