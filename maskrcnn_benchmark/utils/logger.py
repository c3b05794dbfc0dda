"""Console and file logging for training and testing runs.

The console gets INFO and above; the log file gets everything, including the records marked
``extra=FILE_ONLY`` (the environment report, the full config): detail that belongs on disk, not
between the iteration lines.
"""
import logging
import os
import sys

_FORMAT = "%(asctime)s %(name)s %(levelname)s: %(message)s"
FILE_ONLY = {"file_only": True}


def _not_file_only(record):
    return not getattr(record, "file_only", False)


def setup_logger(name, save_dir, distributed_rank, filename="log.txt"):
    """The logger ``name``, printing to stdout and (when ``save_dir`` is set) to
    ``save_dir/filename``. Processes other than rank 0 get a logger without handlers, so only
    one copy of every message appears. Calling it again replaces the handlers it added before."""
    logger = logging.getLogger(name)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    for handler in [h for h in logger.handlers if getattr(h, "_added_by_setup_logger", False)]:
        logger.removeHandler(handler)
        handler.close()
    if distributed_rank > 0:
        return logger

    formatter = logging.Formatter(_FORMAT)
    console = logging.StreamHandler(stream=sys.stdout)
    console.setLevel(logging.INFO)
    console.addFilter(_not_file_only)
    handlers = [console]
    if save_dir:
        os.makedirs(save_dir, exist_ok=True)
        log_file = logging.FileHandler(os.path.join(save_dir, filename))
        log_file.setLevel(logging.DEBUG)
        handlers.append(log_file)
    for handler in handlers:
        handler.setFormatter(formatter)
        handler._added_by_setup_logger = True
        logger.addHandler(handler)
    return logger
