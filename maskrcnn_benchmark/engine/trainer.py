"""The training loop: forward, loss, backward, step, with logging, checkpoints and evaluation.

Only the loss-dict entries whose key starts with ``loss`` are optimised; every other entry is a
diagnostic (e.g. the Sampling-Free ``sf_*`` values) and is only logged.
"""
import datetime
import json
import logging
import math
import os
import resource
import time
from contextlib import nullcontext

import torch

from maskrcnn_benchmark.utils.checkpoint import capture_rng_state, restore_rng_state
from maskrcnn_benchmark.utils.comm import all_gather, get_rank, get_world_size, is_main_process, reduce_dict, synchronize
from maskrcnn_benchmark.utils.metric_logger import MetricLogger

from .inference import evaluation_kinds, inference

AUTOCAST_DTYPES = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss."""


def reduce_loss_dict(loss_dict):
    """The loss dict averaged over all processes (for logging; every process gets the same values)."""
    return reduce_dict({name: value.detach().float() for name, value in loss_dict.items()}, average=True)


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


def peak_memory_mb(device):
    """Peak memory so far: allocated GPU memory on CUDA, the process's peak resident size on CPU."""
    if torch.device(device).type == "cuda":
        return torch.cuda.max_memory_allocated() / 1024.0 / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kilobytes on Linux


class _MetricsSink(object):
    """Writes log records to OUTPUT_DIR/metrics.json (one json object per line) and TensorBoard,
    on the main process only."""

    def __init__(self, output_dir):
        self.enabled = bool(output_dir) and is_main_process()
        self.path = os.path.join(output_dir, "metrics.json") if self.enabled else None
        self.writer = None
        if self.enabled:
            os.makedirs(output_dir, exist_ok=True)
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional
                logging.getLogger(__name__).warning("tensorboard is not installed: no event files written")
            else:
                self.writer = SummaryWriter(log_dir=os.path.join(output_dir, "tensorboard"))

    def write(self, iteration, values):
        if not self.enabled:
            return
        with open(self.path, "a") as handle:
            handle.write(json.dumps({"iteration": iteration, **values}) + "\n")
        if self.writer is not None:
            for name, value in values.items():
                self.writer.add_scalar(name, value, iteration)
            self.writer.flush()

    def close(self):
        if self.writer is not None:
            self.writer.close()


def _check_finite(iteration, loss_dict, total):
    if math.isfinite(total):
        return
    values = ", ".join(f"{name}={value.item():.6g}" for name, value in loss_dict.items())
    raise NonFiniteLossError(
        f"non-finite loss at iteration {iteration}: total={total} ({values}); training stopped, "
        "the last checkpoint is left as it was"
    )


def _sampling_free_grad_norms(model):
    try:
        from maskrcnn_benchmark.modeling.sampling_free import classification_grad_norms
    except ImportError:
        return {}
    return classification_grad_norms(model)


def _evaluate_periodically(cfg, model, data_loader_val, device, iteration, sink, logger):
    logger.info("Evaluating at iteration %d", iteration)
    iou_types, box_only = evaluation_kinds(cfg)
    result = inference(model, data_loader_val, dataset_name=cfg.DATASETS.TEST[0], iou_types=iou_types,
                       box_only=box_only, device=device, output_folder=None)
    synchronize()
    model.train()
    if result is None:
        return
    coco_results = result[0] if isinstance(result, tuple) else result
    if hasattr(coco_results, "as_dict"):
        sink.write(iteration, {"val/" + name: value for name, value in coco_results.as_dict().items()})
    logger.info("Evaluation at iteration %d: %s", iteration, coco_results)


def do_train(cfg, model, data_loader, data_loader_val, optimizer, scheduler, checkpointer, device,
             checkpoint_period, test_period, arguments):
    """Train from ``arguments["iteration"]`` to ``len(data_loader)`` iterations.

    The data loader must start at that iteration (``make_data_loader(..., start_iter=...)``).
    ``arguments`` is saved into every checkpoint; when it holds ``rng_states`` (from a resumed
    checkpoint), the random generators are restored first, so the run continues exactly.
    """
    logger = logging.getLogger("maskrcnn_benchmark.trainer")
    logger.info("Start training")
    meters = MetricLogger(delimiter="  ")
    max_iter = len(data_loader)
    start_iter = arguments["iteration"]
    log_period = max(int(cfg.SOLVER.LOG_PERIOD), 1)
    device = torch.device(device)

    # Creating the iterator may draw a seed from torch's generator (a DataLoader without its own
    # generator does), so it happens before the saved generator states are put back.
    batches = iter(data_loader)
    rng_states = arguments.pop("rng_states", None)
    if rng_states is not None and len(rng_states) == get_world_size():
        restore_rng_state(rng_states[get_rank()])
    elif rng_states is not None:
        logger.warning("checkpoint holds RNG states of %d processes, this run has %d: not restored",
                       len(rng_states), get_world_size())

    use_grad_scaler = cfg.DTYPE == "float16" and device.type == "cuda"
    grad_scaler = torch.amp.GradScaler("cuda", enabled=use_grad_scaler)
    sink = _MetricsSink(cfg.OUTPUT_DIR)

    model.train()
    start_training_time = time.time()
    end = time.time()
    for iteration, (images, targets, _) in enumerate(batches, start_iter):
        data_time = time.time() - end
        iteration = iteration + 1
        arguments["iteration"] = iteration

        images = images.to(device)
        targets = [target.to(device) for target in targets]
        with autocast_context(cfg.DTYPE, device):
            loss_dict = model(images, targets)
        losses = optimised_loss(loss_dict)

        # checked on values averaged across processes, so that every process stops together
        reduced = reduce_loss_dict(loss_dict)
        reduced_total = optimised_loss(reduced).item()
        _check_finite(iteration, reduced, reduced_total)
        _check_finite(iteration, loss_dict, losses.item())

        optimizer.zero_grad(set_to_none=True)
        grad_scaler.scale(losses).backward()
        grad_scaler.unscale_(optimizer)
        grad_norms = _sampling_free_grad_norms(model)
        grad_scaler.step(optimizer)
        grad_scaler.update()
        scheduler.step()

        batch_time = time.time() - end
        end = time.time()
        meters.update(loss=reduced_total, **reduced, **grad_norms)
        meters.update(time=batch_time, data=data_time)

        if iteration % log_period == 0 or iteration == max_iter:
            eta_seconds = meters.time.global_avg * (max_iter - iteration)
            lr = _base_lr(optimizer)
            memory = peak_memory_mb(device)
            logger.info(meters.delimiter.join([
                f"eta: {datetime.timedelta(seconds=int(eta_seconds))}",
                f"iter: {iteration}",
                str(meters),
                f"lr: {lr:.6f}",
                f"max mem: {memory:.0f}M",
            ]))
            record = {name: meter.median for name, meter in meters.meters.items()}
            record.update({"lr": lr, "max_mem_mb": memory, "eta_seconds": eta_seconds})
            sink.write(iteration, record)

        if checkpoint_period > 0 and iteration % checkpoint_period == 0 and iteration != max_iter:
            _save(checkpointer, f"model_{iteration:07d}", arguments)
        if data_loader_val is not None and test_period > 0 and iteration % test_period == 0:
            _evaluate_periodically(cfg, model, data_loader_val, device, iteration, sink, logger)
            end = time.time()
        if iteration == max_iter:
            _save(checkpointer, "model_final", arguments)

    sink.close()
    total_training_time = time.time() - start_training_time
    done = max(max_iter - start_iter, 1)
    logger.info("Total training time: %s (%.4f s / it)",
                datetime.timedelta(seconds=int(total_training_time)), total_training_time / done)


def _base_lr(optimizer):
    """The schedule's learning rate: that of a weight group (bias groups run at a multiple of it)."""
    for group in optimizer.param_groups:
        if not group.get("name", "").endswith("bias"):
            return group["lr"]
    return optimizer.param_groups[0]["lr"]


def _save(checkpointer, name, arguments):
    # every process's generators, so that a multi-process run resumes exactly too
    rng_states = all_gather(capture_rng_state())
    checkpointer.save(name, rng_states=rng_states, **arguments)
