"""Saving and restoring training state (model, optimizer, scheduler, extras) crash-safely.

A checkpoint is written to a temporary file in the same folder, flushed to disk and then renamed
over its final name, so a crash at any moment leaves either the old or the new file, never a torn
one. The ``last_checkpoint`` pointer (the file name of the newest checkpoint) is updated the same
way and only after the checkpoint itself is complete.

Files are read with ``torch.load(weights_only=True)``: everything saved is tensors or plain Python
values, random-number-generator states included (see :func:`capture_rng_state`).
"""
import logging
import os
import random
import tempfile

import numpy as np
import torch

from maskrcnn_benchmark.utils.c2_model_loading import load_c2_format
from maskrcnn_benchmark.utils.imports import import_file
from maskrcnn_benchmark.utils.model_serialization import load_state_dict
from maskrcnn_benchmark.utils.model_zoo import cache_url

LAST_CHECKPOINT_FILE = "last_checkpoint"
CATALOG_PREFIX = "catalog://"
URL_PREFIXES = ("http://", "https://", "file://")


def _write_atomically(path, write):
    """Call ``write(file_object)`` on a temporary file beside ``path``, then rename it to ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    handle, temp_path = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp_path, path)
    except BaseException:
        if os.path.exists(temp_path):
            os.remove(temp_path)
        raise
    # make the rename itself durable
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def capture_rng_state():
    """The state of every random generator training touches, as tensors and plain values."""
    keys, position, has_gauss, cached_gaussian = np.random.get_state()[1:]
    version, python_state, gauss_next = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "python": {"version": version, "state": list(python_state), "gauss_next": gauss_next},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state):
    """Inverse of :func:`capture_rng_state`."""
    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"]
    np.random.set_state((
        "MT19937",
        numpy_state["keys"].numpy().astype(np.uint32),
        numpy_state["pos"],
        numpy_state["has_gauss"],
        numpy_state["cached_gaussian"],
    ))
    python_state = state["python"]
    random.setstate((python_state["version"], tuple(python_state["state"]), python_state["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Checkpointer(object):
    """Saves ``{"model", "optimizer", "scheduler", **extra}`` into ``save_dir`` and restores it."""

    def __init__(self, model, optimizer=None, scheduler=None, save_dir="", save_to_disk=None, logger=None):
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.save_dir = save_dir
        self.save_to_disk = save_to_disk
        self.logger = logger or logging.getLogger(__name__)

    def _model_state_dict(self):
        # DistributedDataParallel wraps the model as .module; save the bare names
        model = getattr(self.model, "module", self.model)
        return model.state_dict()

    def save(self, name, **kwargs):
        """Write ``save_dir/name.pth`` atomically and point ``last_checkpoint`` at it."""
        if not self.save_dir or not self.save_to_disk:
            return
        os.makedirs(self.save_dir, exist_ok=True)
        data = {"model": self._model_state_dict()}
        if self.optimizer is not None:
            data["optimizer"] = self.optimizer.state_dict()
        if self.scheduler is not None:
            data["scheduler"] = self.scheduler.state_dict()
        data.update(kwargs)

        save_file = os.path.join(self.save_dir, f"{name}.pth")
        self.logger.info("Saving checkpoint to %s", save_file)
        _write_atomically(save_file, lambda out: torch.save(data, out))
        self.tag_last_checkpoint(save_file)

    def load(self, f=None, use_latest=True):
        """Restore from ``last_checkpoint`` (when ``use_latest`` and it exists) or from ``f``.

        Returns the extra entries of the checkpoint (iteration, RNG states, ...); an empty dict when
        there is nothing to load.
        """
        if use_latest and self.has_checkpoint():
            f = self.get_checkpoint_file()
        if not f:
            self.logger.info("No checkpoint found. Initializing model from scratch")
            return {}
        self.logger.info("Loading checkpoint from %s", f)
        checkpoint = self._load_file(f)
        self._load_model(checkpoint)
        if "optimizer" in checkpoint and self.optimizer is not None:
            self.logger.info("Loading optimizer from %s", f)
            self.optimizer.load_state_dict(checkpoint.pop("optimizer"))
        if "scheduler" in checkpoint and self.scheduler is not None:
            self.logger.info("Loading scheduler from %s", f)
            self.scheduler.load_state_dict(checkpoint.pop("scheduler"))
        checkpoint.pop("optimizer", None)
        checkpoint.pop("scheduler", None)
        return checkpoint

    def has_checkpoint(self):
        return bool(self.save_dir) and os.path.exists(os.path.join(self.save_dir, LAST_CHECKPOINT_FILE))

    def get_checkpoint_file(self):
        """The checkpoint ``last_checkpoint`` names ('' when there is none); relative names are
        taken relative to ``save_dir`` so an output folder can be moved."""
        pointer = os.path.join(self.save_dir, LAST_CHECKPOINT_FILE)
        try:
            with open(pointer) as handle:
                name = handle.read().strip()
        except OSError:
            return ""
        if name and not os.path.isabs(name):
            name = os.path.join(self.save_dir, name)
        return name

    def tag_last_checkpoint(self, last_filename):
        pointer = os.path.join(self.save_dir, LAST_CHECKPOINT_FILE)
        if os.path.dirname(os.path.abspath(last_filename)) == os.path.abspath(self.save_dir):
            last_filename = os.path.basename(last_filename)
        _write_atomically(pointer, lambda out: out.write(last_filename.encode("utf-8")))

    def _load_file(self, f):
        if not os.path.isfile(f):
            raise FileNotFoundError(f"checkpoint file not found: {f}")
        try:
            loaded = torch.load(f, map_location=torch.device("cpu"), weights_only=True)
        except Exception as err:  # torch raises RuntimeError, EOFError, UnpicklingError, ...
            raise RuntimeError(f"cannot read checkpoint {f}: the file is truncated, corrupt or not a "
                               f"weights-only PyTorch checkpoint ({type(err).__name__}: {err})") from err
        if not isinstance(loaded, dict):
            raise RuntimeError(f"checkpoint {f} holds a {type(loaded).__name__}, expected a dict")
        return loaded

    def _load_model(self, checkpoint):
        model = getattr(self.model, "module", self.model)
        load_state_dict(model, checkpoint.pop("model"))


class DetectronCheckpointer(Checkpointer):
    """A Checkpointer that also accepts ``catalog://`` names, URLs and Detectron ``.pkl`` files
    (the forms MODEL.WEIGHT takes)."""

    def __init__(self, cfg, model, optimizer=None, scheduler=None, save_dir="", save_to_disk=None, logger=None):
        super().__init__(model, optimizer, scheduler, save_dir, save_to_disk, logger)
        self.cfg = cfg.clone()

    def _resolve(self, f):
        if f.startswith(CATALOG_PREFIX):
            paths_catalog = import_file("maskrcnn_benchmark.config.paths_catalog", self.cfg.PATHS_CATALOG, True)
            url = paths_catalog.ModelCatalog.get(f[len(CATALOG_PREFIX):])
            self.logger.info("%s points to %s", f, url)
            f = url
        if f.startswith(URL_PREFIXES):
            cached = cache_url(f)
            self.logger.info("url %s cached in %s", f, cached)
            f = cached
        return f

    def _load_file(self, f):
        f = self._resolve(f)
        if f.endswith(".pkl"):
            return load_c2_format(self.cfg, f)
        loaded = super()._load_file(f)
        if "model" not in loaded:
            loaded = {"model": loaded}
        return loaded
