"""Writers of an :class:`~maskrcnn_benchmark.engine.events.EventStorage`: one short console line,
OUTPUT_DIR/metrics.json (one json object per iteration that has new values) and TensorBoard.

The console line carries the total loss, the optimised loss terms, the learning rate, the step and
data times, the ETA and the peak memory; every other scalar (the Sampling-Free ``sf_*`` diagnostics,
evaluation results) goes to metrics.json and TensorBoard only.
"""
import datetime
import json
import logging
import os

TOTAL_LOSS = "loss"


def _format(value):
    return f"{value:.4g}"


class ConsoleWriter(object):
    """Logs ``iter: 25/300  loss: 1.23 (classifier 0.51, box_reg 0.30)  lr: 0.01  time: 0.35s ...``."""

    def __init__(self, max_iter, logger=None):
        self.max_iter = max_iter
        self.logger = logger or logging.getLogger("maskrcnn_benchmark.trainer")

    def line(self, storage):
        latest = storage.latest_smoothed()
        values = {name: value for name, (value, _) in latest.items()}
        # the iteration the losses are from (after an error: the last step that completed)
        iteration = latest[TOTAL_LOSS][1] if TOTAL_LOSS in latest else storage.iter
        parts = [f"iter: {iteration}/{self.max_iter}"]
        if TOTAL_LOSS in values:
            terms = [f"{name[len('loss_'):]} {_format(value)}" for name, value in values.items()
                     if name.startswith("loss_")]
            parts.append(f"loss: {_format(values[TOTAL_LOSS])}" + (f" ({', '.join(terms)})" if terms else ""))
        if "lr" in values:
            parts.append(f"lr: {values['lr']:.4g}")
        for name in ("time", "data"):
            if name in values:
                parts.append(f"{name}: {values[name]:.3f}s")
        if "eta_seconds" in values:
            parts.append(f"eta: {datetime.timedelta(seconds=int(values['eta_seconds']))}")
        if "max_mem_mb" in values:
            parts.append(f"mem: {values['max_mem_mb']:.0f}M")
        return "  ".join(parts)

    def write(self, storage):
        self.logger.info(self.line(storage))

    def close(self):
        pass


class _PerIterationWriter(object):
    """Base of the file writers: each ``write`` emits, per iteration, the values put since the
    previous ``write`` (smoothed where the storage says so)."""

    def __init__(self):
        self._last_written = None

    def _new_records(self, storage):
        records = {}
        for name, (value, iteration) in storage.latest_smoothed().items():
            if self._last_written is None or iteration > self._last_written:
                records.setdefault(iteration, {})[name] = value
        if records:
            self._last_written = max(records)
        return sorted(records.items())


class JSONWriter(_PerIterationWriter):
    """Appends ``{"iteration": i, name: value, ...}`` lines to ``path`` (a resumed run appends to the
    file of the run it continues; readers keep the last record of an iteration)."""

    def __init__(self, path):
        super().__init__()
        self.path = path

    def write(self, storage):
        records = self._new_records(storage)
        if not records:
            return
        with open(self.path, "a") as handle:
            for iteration, values in records:
                handle.write(json.dumps({"iteration": iteration, **values}) + "\n")

    def close(self):
        pass


class TensorboardWriter(_PerIterationWriter):
    """Event files under ``log_dir``; a no-op with a warning when tensorboard is not installed."""

    def __init__(self, log_dir):
        super().__init__()
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional
            logging.getLogger(__name__).warning("tensorboard is not installed: no event files written")
            self._writer = None
        else:
            os.makedirs(log_dir, exist_ok=True)
            self._writer = SummaryWriter(log_dir=log_dir)

    def write(self, storage):
        if self._writer is None:
            return
        for iteration, values in self._new_records(storage):
            for name, value in values.items():
                self._writer.add_scalar(name, value, iteration)
        self._writer.flush()

    def close(self):
        if self._writer is not None:
            self._writer.close()
