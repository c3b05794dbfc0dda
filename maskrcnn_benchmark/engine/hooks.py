"""Hooks: what a training run does around the bare step, each a small object the trainer calls.

A hook overrides any of ``before_train``, ``before_step``, ``after_backward`` (gradients are there,
unscaled, the optimizer has not stepped yet), ``after_step`` and ``after_train``; it reaches the
trainer (model, optimizer, ``iter``, ``start_iter``, ``max_iter``, ``storage``) as ``self.trainer``.
Hooks run in the order they were registered.
"""
import datetime
import logging
import resource
import time

import torch

from maskrcnn_benchmark.modeling.sampling_free import classification_grad_norms, measure_and_apply_optimal_bias
from maskrcnn_benchmark.solver.build import gradient_clipping
from maskrcnn_benchmark.utils.checkpoint import capture_rng_state, restore_rng_state
from maskrcnn_benchmark.utils.comm import all_gather, get_rank, get_world_size

logger = logging.getLogger("maskrcnn_benchmark.trainer")


class HookBase(object):
    trainer = None  # set when registered

    def before_train(self):
        pass

    def after_train(self):
        pass

    def before_step(self):
        pass

    def after_backward(self):
        pass

    def after_step(self):
        pass


def _due(iteration, period, max_iter):
    """Whether a periodic action happens at ``iteration``: every ``period`` and at the last one."""
    return (period > 0 and iteration % period == 0) or iteration == max_iter


class OptimalBiasInit(HookBase):
    """Sampling-Free optimal bias initialisation before the first iteration of a fresh run, for the
    heads whose config asks for it (counted over ``dataset``; a resumed run keeps its checkpoint's
    biases). ``applied`` holds what each head set."""

    def __init__(self, cfg, dataset):
        self.cfg = cfg
        self.dataset = dataset
        self.applied = {}

    def before_train(self):
        if self.trainer.start_iter == 0:
            self.applied = measure_and_apply_optimal_bias(self.cfg, self.trainer.model, self.dataset, logger=logger)


class IterationTimer(HookBase):
    """Puts ``time`` (seconds per step, data loading included, hooks after it excluded) and
    ``eta_seconds``; logs the total training time at the end."""

    _train_start = None

    def before_train(self):
        self._train_start = time.perf_counter()

    def before_step(self):
        self._step_start = time.perf_counter()

    def after_step(self):
        storage = self.trainer.storage
        storage.put_scalar("time", time.perf_counter() - self._step_start)
        remaining = self.trainer.max_iter - self.trainer.iter
        storage.put_scalar("eta_seconds", storage.history("time").median * remaining, smoothing=False)

    def after_train(self):
        if self._train_start is None:  # an earlier hook's before_train failed
            return
        total = time.perf_counter() - self._train_start
        done = max(self.trainer.iter - self.trainer.start_iter, 1)
        logger.info("Total training time: %s (%.4f s / it)", datetime.timedelta(seconds=int(total)), total / done)


def schedule_lr(optimizer):
    """The schedule's learning rate: that of a weight group (bias groups run at a multiple of it)."""
    for group in optimizer.param_groups:
        if not group.get("name", "").endswith("bias"):
            return group["lr"]
    return optimizer.param_groups[0]["lr"]


class LRScheduler(HookBase):
    """Puts ``lr`` (the one the step just used) and advances the schedule."""

    def __init__(self, optimizer, scheduler):
        self.optimizer = optimizer
        self.scheduler = scheduler

    def after_step(self):
        self.trainer.storage.put_scalar("lr", schedule_lr(self.optimizer), smoothing=False)
        self.scheduler.step()


class SamplingFreeGradNorms(HookBase):
    """Puts ``sf_<head>_cls_grad_norm`` (gradient norm of each Sampling-Free head's classification
    layer) after the backward pass of every ``period``-th iteration."""

    def __init__(self, period):
        self.period = period

    def after_backward(self):
        if _due(self.trainer.iter, self.period, self.trainer.max_iter):
            self.trainer.storage.put_scalars(**classification_grad_norms(self.trainer.model))


class GradientClipping(HookBase):
    """Clips the gradients after the backward pass: ``"norm"`` rescales them together so that their
    ``norm_type`` norm is at most ``clip_value``, ``"value"`` clamps every entry to
    ``[-clip_value, clip_value]``. Puts ``grad_norm`` (the norm before clipping, "norm" only)."""

    def __init__(self, clip_type, clip_value, norm_type=2.0):
        self.clip_type, self.clip_value, self.norm_type = clip_type, clip_value, norm_type

    @classmethod
    def from_config(cls, cfg):
        """The hook SOLVER.CLIP_GRADIENTS asks for, or None when clipping is off."""
        settings = gradient_clipping(cfg)
        return None if settings is None else cls(*settings)

    def after_backward(self):
        parameters = [p for p in self.trainer.model.parameters() if p.grad is not None]
        if self.clip_type == "value":
            torch.nn.utils.clip_grad_value_(parameters, self.clip_value)
            return
        norm = torch.nn.utils.clip_grad_norm_(parameters, self.clip_value, self.norm_type)
        self.trainer.storage.put_scalar("grad_norm", float(norm))


class PeriodicCheckpointer(HookBase):
    """Saves ``model_<iteration>`` every ``period`` iterations and ``model_final`` at the end, with
    ``arguments`` (iteration and whatever the caller keeps there) and every process's random
    generator states. A resumed run's ``arguments`` may hold the states the checkpoint saved:
    they are put back before the first step, so the run continues exactly."""

    def __init__(self, checkpointer, period, arguments):
        self.checkpointer = checkpointer
        self.period = period
        self.arguments = arguments

    def before_train(self):
        rng_states = self.arguments.pop("rng_states", None)
        if rng_states is None:
            return
        if len(rng_states) == get_world_size():
            restore_rng_state(rng_states[get_rank()])
        else:
            logger.warning("checkpoint holds RNG states of %d processes, this run has %d: not restored",
                           len(rng_states), get_world_size())

    def after_step(self):
        iteration, max_iter = self.trainer.iter, self.trainer.max_iter
        self.arguments["iteration"] = iteration
        if iteration == max_iter:
            self.save("model_final")
        elif self.period > 0 and iteration % self.period == 0:
            self.save(f"model_{iteration:07d}")

    def save(self, name):
        # every process's generators, so that a multi-process run resumes exactly too
        rng_states = all_gather(capture_rng_state())
        self.checkpointer.save(name, rng_states=rng_states, **self.arguments)


class EvalHook(HookBase):
    """Every ``period`` iterations, ``evaluate()`` (returning ``{name: value}``, the same on every
    process or empty) runs and its values are put unsmoothed; the model is back in training mode
    afterwards."""

    def __init__(self, period, evaluate):
        self.period = period
        self.evaluate = evaluate

    def after_step(self):
        if self.period <= 0 or self.trainer.iter % self.period != 0:
            return
        logger.info("Evaluating at iteration %d", self.trainer.iter)
        results = self.evaluate() or {}
        self.trainer.model.train()
        self.trainer.storage.put_scalars(smoothing=False, **results)
        if results:
            logger.info("Evaluation at iteration %d: %s", self.trainer.iter,
                        ", ".join(f"{name} {value:.4f}" for name, value in results.items()))


def peak_memory_mb(device):
    """Peak memory so far: allocated GPU memory on CUDA, the process's peak resident size on CPU."""
    if torch.device(device).type == "cuda":
        return torch.cuda.max_memory_allocated() / 1024.0 / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kilobytes on Linux


class PeriodicWriter(HookBase):
    """Every ``period`` iterations and at the last one, puts ``max_mem_mb`` and calls each writer;
    at the end writes what is newer than the last write (the iterations before an error) and closes
    the writers."""

    def __init__(self, writers, period, device):
        self.writers = list(writers)
        self.period = period
        self.device = device
        self._written_up_to = None

    def _newest_iteration(self):
        return max((iteration for _, iteration in self.trainer.storage.latest().values()), default=None)

    def _write(self):
        for writer in self.writers:
            writer.write(self.trainer.storage)
        self._written_up_to = self._newest_iteration()

    def after_step(self):
        if _due(self.trainer.iter, self.period, self.trainer.max_iter):
            self.trainer.storage.put_scalar("max_mem_mb", peak_memory_mb(self.device), smoothing=False)
            self._write()

    def after_train(self):
        try:
            if self._newest_iteration() not in (None, self._written_up_to):
                self._write()
        finally:
            for writer in self.writers:
                writer.close()
