"""``EventStorage``: the scalars a training run reports, per iteration, for the writers to read.

The trainer puts the losses and diagnostics of each step, the hooks put timings, the learning rate,
gradient norms and evaluation results; writers (console, metrics.json, TensorBoard) read them at
their own period. Each scalar keeps a short history, so a writer can show a smoothed value (the
median of the last ``window_size`` puts) for noisy series such as losses, and the latest value for
the others (learning rate, AP).
"""
from maskrcnn_benchmark.utils.metric_logger import SmoothedValue


class EventStorage(object):
    def __init__(self, start_iter=0, window_size=20):
        self.iter = start_iter
        self.window_size = window_size
        self._history = {}
        self._latest = {}  # name -> (value, iteration at which it was put)
        self._smoothed = {}

    def put_scalar(self, name, value, smoothing=True):
        """Record ``value`` for ``name`` at the current iteration. ``smoothing`` says whether writers
        show the median of recent values (losses, times) or the value itself (lr, AP)."""
        value = float(value)
        history = self._history.get(name)
        if history is None:
            history = self._history[name] = SmoothedValue(self.window_size)
        history.update(value)
        self._latest[name] = (value, self.iter)
        self._smoothed[name] = smoothing

    def put_scalars(self, smoothing=True, **values):
        for name, value in values.items():
            self.put_scalar(name, value, smoothing)

    def history(self, name):
        if name not in self._history:
            raise KeyError(f"no scalar {name!r} was put; known: {sorted(self._history)}")
        return self._history[name]

    def latest(self):
        """``{name: (value, iteration)}``: the last value put for each name."""
        return dict(self._latest)

    def latest_smoothed(self):
        """``{name: (value, iteration)}`` with the window median in place of the last value for the
        scalars put with ``smoothing``."""
        return {
            name: (self._history[name].median if self._smoothed[name] else value, iteration)
            for name, (value, iteration) in self._latest.items()
        }
