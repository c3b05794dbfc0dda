"""Saving and restoring training state (model, optimizer, scheduler, extras) crash-safely.

A checkpoint is written to a temporary file in the same folder, flushed to disk and then renamed
over its final name, so a crash at any moment leaves either the old or the new file, never a torn
one. The ``last_checkpoint`` pointer (the file name of the newest checkpoint) is updated the same
way and only after the checkpoint itself is complete. Files get the permissions the umask gives any
new file; the temporary files a killed writer leaves behind are removed at the next save or load in
that folder.

Only finite states are written: a model weight or optimizer value that is NaN or infinite makes
:meth:`Checkpointer.save` raise :class:`NonFiniteCheckpointError` and leaves the folder as it was.

Files are read with ``torch.load(weights_only=True)``: everything saved is tensors or plain Python
values, random-number-generator states included (see :func:`capture_rng_state`).

maskrcnn-benchmark's model-zoo ``.pth`` files and the Sampling-Free authors' releases are files of
the same layout (``{"model": state_dict, "optimizer", "scheduler", "iteration"}``, often with the
``module.`` prefix of DistributedDataParallel and the stored cell anchors): ``MODEL.WEIGHT`` loads
them as they are, see ``model_serialization`` for how their names and shapes are matched. Their
optimizer and scheduler entries are used only by a checkpointer given an optimizer / scheduler
(resuming); otherwise one log line says they were left out.
"""
import errno
import logging
import os
import random
import re
import secrets
import socket

import numpy as np
import torch

from maskrcnn_benchmark.utils.c2_model_loading import load_c2_format
from maskrcnn_benchmark.utils.imports import import_file
from maskrcnn_benchmark.utils.model_serialization import IncompatibleWeightsError, load_state_dict
from maskrcnn_benchmark.utils.model_zoo import cache_url

LAST_CHECKPOINT_FILE = "last_checkpoint"
CATALOG_PREFIX = "catalog://"
URL_PREFIXES = ("http://", "https://", "file://")
# ".<target>.tmp-<host>-<pid>-<random>": who wrote it, so that only a dead writer's file is removed
_TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.tmp-(?P<host>[^/]+)-(?P<pid>\d+)-[0-9a-f]{8}$")
MATCH_MODES = ("partial", "parameters", "exact")

logger = logging.getLogger(__name__)


class NonFiniteCheckpointError(FloatingPointError):
    """A state to be saved (or loaded) holds NaN or infinite values."""


class CheckpointError(RuntimeError):
    """A checkpoint file cannot be read or does not fit the model."""


def _temp_path(path):
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{name}.tmp-{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}")


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def remove_stale_temp_files(folder):
    """Delete the temporary files of interrupted writes in ``folder`` whose writer (a process on
    this host) is gone; returns their paths. Files of live writers or other hosts are kept."""
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    host = socket.gethostname()
    for name in names:
        match = _TEMP_NAME.match(name)
        if match is None or match["host"] != host or _process_alive(int(match["pid"])):
            continue
        path = os.path.join(folder, name)
        try:
            os.remove(path)
        except OSError:
            continue
        removed.append(path)
    if removed:
        logger.info("removed %d temporary file(s) of interrupted checkpoint writes: %s", len(removed), ", ".join(removed))
    return removed


def _write_atomically(path, write):
    """Call ``write(file_object)`` on a temporary file beside ``path``, then rename it to ``path``.

    An error (a full disk, a read-only folder) removes the temporary file and names ``path``; the
    file previously at ``path`` is untouched."""
    folder = os.path.dirname(os.path.abspath(path))
    temp_path = _temp_path(path)
    try:
        # mode 0o666 & ~umask, as for any file the user creates (tempfile.mkstemp forces 0600)
        handle = os.open(temp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(handle, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp_path, path)
    except BaseException as err:
        if os.path.exists(temp_path):
            os.remove(temp_path)
        if isinstance(err, OSError) and err.errno is not None:
            reason = os.strerror(err.errno) if err.errno != errno.ENOSPC else "no space left on device"
            raise OSError(err.errno, f"cannot write {path}: {reason} ({err}); the file previously there, "
                                     "if any, is unchanged") from err
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


def _non_finite_entries(state, prefix=""):
    """``[(name, count)]`` of the floating-point tensors (and floats) in a nested state that hold
    NaN or infinite values."""
    found = []
    if isinstance(state, torch.Tensor):
        if state.is_floating_point() or state.is_complex():
            bad = int((~torch.isfinite(state)).sum())
            if bad:
                found.append((prefix, bad))
    elif isinstance(state, float):
        if state != state or state in (float("inf"), float("-inf")):
            found.append((prefix, 1))
    elif isinstance(state, dict):
        for key, value in state.items():
            found += _non_finite_entries(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(state, (list, tuple)):
        for index, value in enumerate(state):
            found += _non_finite_entries(value, f"{prefix}[{index}]")
    return found


def require_finite(state, what):
    """Raise :class:`NonFiniteCheckpointError` naming the entries of ``state`` that are not finite."""
    bad = _non_finite_entries(state)
    if bad:
        listed = ", ".join(f"{name} ({count} value(s))" for name, count in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise NonFiniteCheckpointError(f"{what}: NaN or infinite values in {listed}{more}")


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


def read_checkpoint(path, mmap=False):
    """The dict stored in the checkpoint file ``path`` (weights-only, onto the CPU). With ``mmap``
    the tensors of a zip-format file stay on disk until used, so reading the extras of a large
    file (its iteration, its config) is cheap."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    try:
        try:
            loaded = torch.load(path, map_location=torch.device("cpu"), weights_only=True, mmap=mmap)
        except RuntimeError as err:
            if not mmap or "mmap" not in str(err):  # legacy (non-zip) files cannot be memory-mapped
                raise
            loaded = torch.load(path, map_location=torch.device("cpu"), weights_only=True)
    except Exception as err:  # torch raises RuntimeError, EOFError, UnpicklingError, ...
        raise CheckpointError(f"cannot read checkpoint {path}: the file is truncated, corrupt or not a "
                              f"weights-only PyTorch checkpoint ({type(err).__name__}: {err})") from err
    if not isinstance(loaded, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(loaded).__name__}, expected a dict")
    return loaded


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
        """Write ``save_dir/name.pth`` atomically and point ``last_checkpoint`` at it.

        The state is checked for NaN / infinite values on every process (so that in a distributed
        run all of them stop together), and written by the one with ``save_to_disk``."""
        if not self.save_dir:
            return
        data = {"model": self._model_state_dict()}
        if self.optimizer is not None:
            data["optimizer"] = self.optimizer.state_dict()
        if self.scheduler is not None:
            data["scheduler"] = self.scheduler.state_dict()
        data.update(kwargs)
        save_file = os.path.join(self.save_dir, f"{name}.pth")
        require_finite({key: data[key] for key in ("model", "optimizer") if key in data},
                       f"refusing to write {save_file}, the training state is not finite "
                       f"(newest checkpoint left as it was: {self.get_checkpoint_file() or 'none'})")
        if not self.save_to_disk:
            return

        os.makedirs(self.save_dir, exist_ok=True)
        remove_stale_temp_files(self.save_dir)
        self.logger.info("Saving checkpoint to %s", save_file)
        _write_atomically(save_file, lambda out: torch.save(data, out))
        self.tag_last_checkpoint(save_file)

    def load(self, f=None, use_latest=True, match="partial"):
        """Restore from ``last_checkpoint`` (when ``use_latest`` and it exists) or from ``f``.

        ``match`` says how completely the file must cover the model: ``"partial"`` loads what fits
        (pretrained backbones), ``"parameters"`` requires every model parameter with its shape
        (evaluation), ``"exact"`` requires the same entries both ways (resuming). A shortfall raises
        :class:`CheckpointError` naming the file and the entries, before the model is touched.
        Returns the extra entries of the checkpoint (iteration, RNG states, ...); an empty dict when
        there is nothing to load.
        """
        if match not in MATCH_MODES:
            raise ValueError(f"match must be one of {MATCH_MODES}, got {match!r}")
        if self.save_dir:
            remove_stale_temp_files(self.save_dir)
        if use_latest and self.has_checkpoint():
            f = self.get_checkpoint_file()
            if not os.path.isfile(f):
                raise FileNotFoundError(f"{os.path.join(self.save_dir, LAST_CHECKPOINT_FILE)} names {f}, "
                                        "which does not exist")
        if not f:
            self.logger.info("No checkpoint found. Initializing model from scratch")
            return {}
        self.logger.info("Loading checkpoint from %s", f)
        checkpoint = self._load_file(f)
        if "model" not in checkpoint:
            raise CheckpointError(f"checkpoint {f} has no 'model' entry (keys: {sorted(checkpoint)[:10]})")
        require_finite(checkpoint["model"], f"checkpoint {f} cannot be used")
        self._load_model(checkpoint, f, match)
        if "optimizer" in checkpoint and self.optimizer is not None:
            self.logger.info("Loading optimizer from %s", f)
            require_finite(checkpoint["optimizer"], f"checkpoint {f} cannot be used")
            self.optimizer.load_state_dict(checkpoint.pop("optimizer"))
        if "scheduler" in checkpoint and self.scheduler is not None:
            self.logger.info("Loading scheduler from %s", f)
            self.scheduler.load_state_dict(checkpoint.pop("scheduler"))
        unused = [key for key in ("optimizer", "scheduler") if checkpoint.pop(key, None) is not None]
        if unused:
            self.logger.info("%s also holds %s state: not used, only its weights are loaded", f, " and ".join(unused))
        return checkpoint

    def has_checkpoint(self):
        return bool(self.save_dir) and os.path.exists(os.path.join(self.save_dir, LAST_CHECKPOINT_FILE))

    def get_checkpoint_file(self):
        """The checkpoint ``last_checkpoint`` names ('' when there is none); relative names are
        taken relative to ``save_dir`` so an output folder can be moved."""
        return last_checkpoint_in(self.save_dir)

    def tag_last_checkpoint(self, last_filename):
        pointer = os.path.join(self.save_dir, LAST_CHECKPOINT_FILE)
        if os.path.dirname(os.path.abspath(last_filename)) == os.path.abspath(self.save_dir):
            last_filename = os.path.basename(last_filename)
        _write_atomically(pointer, lambda out: out.write(last_filename.encode("utf-8")))

    def _load_file(self, f):
        return read_checkpoint(f)

    def _load_model(self, checkpoint, f, match="partial"):
        model = getattr(self.model, "module", self.model)
        try:
            load_state_dict(model, checkpoint.pop("model"), match=match)
        except IncompatibleWeightsError as err:
            raise CheckpointError(f"checkpoint {f} does not fit this model: {err}") from err


def last_checkpoint_in(folder):
    """The path ``folder/last_checkpoint`` names ('' when there is none)."""
    if not folder:
        return ""
    try:
        with open(os.path.join(folder, LAST_CHECKPOINT_FILE)) as handle:
            name = handle.read().strip()
    except OSError:
        return ""
    if name and not os.path.isabs(name):
        name = os.path.join(folder, name)
    return name


class NoWeightsError(FileNotFoundError):
    """Inference was asked for without any trained weights to run."""


def weights_to_evaluate(cfg, explicit=None, random_weights=False, flag="--ckpt"):
    """What an evaluation or a demo runs: ``explicit`` (a file, URL or catalog name) when given,
    else the newest checkpoint of OUTPUT_DIR, else MODEL.WEIGHT; None only with ``random_weights``
    (untrained on purpose). Nothing found is a :class:`NoWeightsError` naming where it looked, so
    a typo in OUTPUT_DIR does not evaluate random weights."""
    if random_weights:
        if explicit:
            raise ValueError(f"both {flag} {explicit} and random weights were asked for; choose one")
        return None
    if explicit:
        return explicit
    newest = last_checkpoint_in(cfg.OUTPUT_DIR)
    if newest:
        return newest
    if cfg.MODEL.WEIGHT:
        return cfg.MODEL.WEIGHT
    pointer = os.path.abspath(os.path.join(cfg.OUTPUT_DIR or ".", LAST_CHECKPOINT_FILE))
    raise NoWeightsError(
        f"no trained weights to run: {flag} not given, no {pointer} (OUTPUT_DIR {cfg.OUTPUT_DIR!r}), MODEL.WEIGHT "
        f"empty. Pass {flag} FILE, set OUTPUT_DIR to the training run's folder, or pass --random-weights to run "
        "an untrained model on purpose")


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
