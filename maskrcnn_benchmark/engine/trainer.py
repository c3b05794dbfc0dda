"""The training loop: a trainer that runs forward, loss, backward and the optimizer step, and hooks
for everything around it (schedule, timing, checkpoints, evaluation, metrics writers, the
Sampling-Free bias initialisation and gradient norms; see ``hooks.py``).

Only the loss-dict entries whose key starts with ``loss`` are optimised; every other entry is a
diagnostic (e.g. the Sampling-Free ``sf_*`` values) that goes to the event storage and is only
logged. ``do_train`` keeps maskrcnn-benchmark's signature and assembles the default hooks.
"""
import logging
import math
import os
import time
import weakref
from contextlib import nullcontext

import torch

from maskrcnn_benchmark.utils.checkpoint import NonFiniteCheckpointError, read_checkpoint, require_finite
from maskrcnn_benchmark.utils.comm import is_main_process, reduce_dict, synchronize

from . import hooks as training_hooks
from .events import EventStorage
from .inference import evaluation_kinds, inference
from .writers import ConsoleWriter, JSONWriter, TensorboardWriter

AUTOCAST_DTYPES = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}
logger = logging.getLogger("maskrcnn_benchmark.trainer")


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss."""


def reduce_loss_dict(loss_dict):
    """The loss dict averaged over all processes (for logging; every process gets the same values)."""
    return reduce_dict({name: value.detach().float().reshape(()) for name, value in loss_dict.items()}, average=True)


def optimised_loss(loss_dict):
    """Sum of the entries whose name starts with ``loss`` (computed in float32)."""
    terms = [value.float() for name, value in loss_dict.items() if name.startswith("loss")]
    if not terms:
        raise KeyError(f"the model's loss dict has no entry starting with 'loss': keys are {sorted(loss_dict)}")
    return sum(terms)


def autocast_context(dtype_name, device):
    """``torch.autocast`` for cfg.DTYPE (a no-op context for float32)."""
    if dtype_name not in AUTOCAST_DTYPES:
        raise ValueError(f"DTYPE must be one of {sorted(AUTOCAST_DTYPES)}, got {dtype_name!r}")
    dtype = AUTOCAST_DTYPES[dtype_name]
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def move_to_device(data, device):
    """``data`` (a tensor, ImageList, BoxList, or lists / tuples / dicts of them) on ``device``."""
    if isinstance(data, (list, tuple)):
        return type(data)(move_to_device(item, device) for item in data)
    if isinstance(data, dict):
        return {key: move_to_device(value, device) for key, value in data.items()}
    return data.to(device) if hasattr(data, "to") else data


class TrainerBase(object):
    """Runs ``run_step`` for iterations ``start_iter + 1 .. max_iter`` (``iter`` is the number of the
    step being run, so checkpoint ``model_0000100`` is the state after 100 steps), with hooks."""

    def __init__(self):
        self._hooks = []
        self.iter = self.start_iter = self.max_iter = 0
        self.storage = EventStorage()

    def register_hooks(self, hooks):
        for hook in hooks:
            if hook is None:
                continue
            hook.trainer = weakref.proxy(self)  # no reference cycle trainer <-> hook
            self._hooks.append(hook)

    def train(self, start_iter, max_iter):
        self.start_iter, self.max_iter = start_iter, max_iter
        self.iter = start_iter
        self.storage = EventStorage(start_iter)
        logger.info("Start training from iteration %d to %d", start_iter, max_iter)
        try:
            self._call("before_train")
            for self.iter in range(start_iter + 1, max_iter + 1):
                self.storage.iter = self.iter
                self._call("before_step")
                self.run_step()
                self._call("after_step")
        except BaseException:
            self._call_after_train_quietly()  # the error that stopped training is the one to see
            raise
        self._call("after_train")

    def _call(self, stage):
        for hook in self._hooks:
            getattr(hook, stage)()

    def _call_after_train_quietly(self):
        for hook in self._hooks:
            try:
                hook.after_train()
            except Exception:
                logger.exception("%s.after_train failed while training was stopping", type(hook).__name__)

    def run_step(self):
        raise NotImplementedError


class SimpleTrainer(TrainerBase):
    """One step: next batch ``(images, targets, ...)`` from ``data``, forward under the DTYPE
    autocast, the sum of the ``loss*`` terms, a stop on a non-finite loss (judged on the values
    averaged over the processes, so every process stops at the same iteration), backward (through
    a gradient scaler for float16 on CUDA), the ``after_backward`` hooks, the optimizer step.

    ``last_loss_dict`` holds the detached, process-averaged loss dict of the latest step."""

    def __init__(self, model, data, optimizer, device="cpu", dtype="float32"):
        super().__init__()
        self.model = model
        self.data = data
        self._batches = iter(data)
        self.optimizer = optimizer
        self.device = torch.device(device)
        autocast_context(dtype, self.device)  # rejects an unknown DTYPE here rather than mid-step
        self.dtype = dtype
        self.grad_scaler = torch.amp.GradScaler("cuda", enabled=dtype == "float16" and self.device.type == "cuda")
        self.last_loss_dict = {}

    def train(self, start_iter, max_iter):
        self.model.train()
        super().train(start_iter, max_iter)

    def run_step(self):
        start = time.perf_counter()
        batch = next(self._batches)
        data_time = time.perf_counter() - start
        images, targets = move_to_device(batch[0], self.device), move_to_device(batch[1], self.device)

        with autocast_context(self.dtype, self.device):
            loss_dict = self.model(images, targets)
        losses = optimised_loss(loss_dict)
        reduced = reduce_loss_dict(loss_dict)
        values = dict(zip(reduced, torch.stack(list(reduced.values())).tolist()))  # one device sync
        total = math.fsum(value for name, value in values.items() if name.startswith("loss"))
        if not math.isfinite(total):
            listed = ", ".join(f"{name}={value:.6g}" for name, value in values.items())
            raise NonFiniteLossError(f"non-finite loss at iteration {self.iter}: total={total} ({listed}); "
                                     "training stopped")

        self.optimizer.zero_grad(set_to_none=True)
        self.grad_scaler.scale(losses).backward()
        self.grad_scaler.unscale_(self.optimizer)
        self._call("after_backward")
        self.grad_scaler.step(self.optimizer)
        self.grad_scaler.update()
        # the update has used the gradients: freeing them now keeps them out of the next forward's memory
        self.optimizer.zero_grad(set_to_none=True)

        self.last_loss_dict = reduced
        self.storage.put_scalars(loss=total, data=data_time, **values)


def newest_checkpoint_note(checkpointer):
    """What the newest checkpoint of ``checkpointer``'s folder is and whether it is finite (read
    from the file, so the statement is true whatever wrote it)."""
    path = checkpointer.get_checkpoint_file() if checkpointer is not None else ""
    if not path or not os.path.isfile(path):
        return "no checkpoint has been written yet"
    try:
        saved = read_checkpoint(path, mmap=True)
        require_finite({key: saved[key] for key in ("model", "optimizer") if key in saved}, path)
    except NonFiniteCheckpointError as err:
        return f"the newest checkpoint is not finite either ({err})"
    except Exception as err:  # unreadable: say so rather than vouch for it
        return f"the newest checkpoint {path} cannot be read ({err})"
    return (f"the newest checkpoint, {path} (iteration {saved.get('iteration', '?')}), holds finite values: "
            "continue from it with --resume, e.g. after lowering SOLVER.BASE_LR")


def _periodic_evaluation(cfg, model, data_loader_val, device):
    """The evaluation EvalHook runs: COCO-style metrics of the first DATASETS.TEST set, as
    ``{"val/<iou type>/<metric>": value}``."""
    iou_types, box_only = evaluation_kinds(cfg)

    def evaluate():
        result = inference(model, data_loader_val, dataset_name=cfg.DATASETS.TEST[0], iou_types=iou_types,
                           box_only=box_only, device=device, output_folder=None,
                           coco_evaluator=cfg.TEST.COCO_EVALUATOR, box_convention=cfg.MODEL.BOX_CONVENTION)
        synchronize()
        if result is None:
            return {}
        coco_results = result[0] if isinstance(result, tuple) else result
        if not hasattr(coco_results, "as_dict"):
            return {}
        return {"val/" + name: value for name, value in coco_results.as_dict().items()}

    return evaluate


def default_writers(cfg, max_iter):
    """The console line everywhere (only the main process's logger prints), metrics.json and
    TensorBoard on the main process when there is an OUTPUT_DIR."""
    writers = [ConsoleWriter(max_iter, logger)]
    if cfg.OUTPUT_DIR and is_main_process():
        os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
        writers += [JSONWriter(os.path.join(cfg.OUTPUT_DIR, "metrics.json")),
                    TensorboardWriter(os.path.join(cfg.OUTPUT_DIR, "tensorboard"))]
    return writers


def do_train(cfg, model, data_loader, data_loader_val, optimizer, scheduler, checkpointer, device,
             checkpoint_period, test_period, arguments):
    """Train from ``arguments["iteration"]`` to ``len(data_loader)`` iterations.

    The data loader must start at that iteration (``make_data_loader(..., start_iter=...)``).
    ``arguments`` is saved into every checkpoint, together with the config (as yaml text); when it
    holds ``rng_states`` (from a resumed checkpoint), the random generators are restored first, so
    the run continues exactly.
    """
    device = torch.device(device)
    max_iter = len(data_loader)
    log_period = max(int(cfg.SOLVER.LOG_PERIOD), 1)
    arguments["config"] = cfg.dump()

    trainer = SimpleTrainer(model, data_loader, optimizer, device, cfg.DTYPE)
    evaluation = None
    if data_loader_val is not None and test_period > 0:
        evaluation = training_hooks.EvalHook(test_period, _periodic_evaluation(cfg, model, data_loader_val, device))
    trainer.register_hooks([
        training_hooks.OptimalBiasInit(cfg, data_loader.dataset),
        training_hooks.IterationTimer(),
        training_hooks.LRScheduler(optimizer, scheduler),
        training_hooks.SamplingFreeGradNorms(log_period),  # before clipping: the raw norms
        training_hooks.GradientClipping.from_config(cfg),
        training_hooks.PeriodicCheckpointer(checkpointer, checkpoint_period, arguments),
        evaluation,
        training_hooks.PeriodicWriter(default_writers(cfg, max_iter), log_period, device),
    ])
    try:
        trainer.train(arguments["iteration"], max_iter)
    except NonFiniteLossError as err:
        raise NonFiniteLossError(f"{err}; {newest_checkpoint_note(checkpointer)}") from None
    return trainer
