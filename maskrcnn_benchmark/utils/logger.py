"""Console and file logging for training and testing runs."""
import logging
import os
import sys

_FORMAT = "%(asctime)s %(name)s %(levelname)s: %(message)s"


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
    handlers = [logging.StreamHandler(stream=sys.stdout)]
    if save_dir:
        os.makedirs(save_dir, exist_ok=True)
        handlers.append(logging.FileHandler(os.path.join(save_dir, filename)))
    for handler in handlers:
        handler.setLevel(logging.DEBUG)
        handler.setFormatter(formatter)
        handler._added_by_setup_logger = True
        logger.addHandler(handler)
    return logger
