"""How a training run starts in its OUTPUT_DIR: afresh, or continuing the checkpoint there.

Continuing is explicit (``--resume``): without it, an OUTPUT_DIR that already holds checkpoints is
an error, so re-running a command never continues an old schedule by surprise. With it, the newest
checkpoint is compared with the current config before anything is written:

- the schedule (SOLVER learning rate, steps, warm-up, weight decay, ...) is the current config's,
  applied from the resumed iteration; what changed is listed;
- the model must be the same: the checkpoint's weights are loaded with ``match="exact"`` (same
  entries, same shapes), and a model change that breaks that is refused (see train_net);
- a SOLVER.MAX_ITER below the checkpoint's iteration is an error.

The checkpoint's own config (saved in it by ``do_train``) is the reference; ``config.yml`` of the
folder stands in for older checkpoints.
"""
import glob
import os

import yaml

from maskrcnn_benchmark.utils.checkpoint import LAST_CHECKPOINT_FILE, last_checkpoint_in, read_checkpoint

# Keys whose change alters the optimisation from the resumed iteration on.
SCHEDULE_KEYS = tuple("SOLVER." + key for key in (
    "BASE_LR", "STEPS", "MAX_ITER", "GAMMA", "WARMUP_FACTOR", "WARMUP_ITERS", "WARMUP_METHOD",
    "BIAS_LR_FACTOR", "MOMENTUM", "WEIGHT_DECAY", "WEIGHT_DECAY_BIAS", "IMS_PER_BATCH"))
# Keys that say where or how the run executes, not what it trains.
IGNORED_KEYS = ("OUTPUT_DIR", "MODEL.DEVICE", "MODEL.WEIGHT", "DIST_TIMEOUT_MINUTES", "PATHS_CATALOG")


def _is_model_key(key):
    return key.startswith("MODEL.")


class ResumeError(RuntimeError):
    """The OUTPUT_DIR and the resume request do not go together."""


def existing_checkpoints(folder):
    """The checkpoint files (and pointer) in ``folder``, by name."""
    if not folder or not os.path.isdir(folder):
        return []
    names = sorted(os.path.basename(p) for p in glob.glob(os.path.join(folder, "model_*.pth")))
    if os.path.exists(os.path.join(folder, LAST_CHECKPOINT_FILE)):
        names.insert(0, LAST_CHECKPOINT_FILE)
    return names


def _flatten(node, prefix=""):
    flat = {}
    for key, value in node.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def config_changes(old_yaml, cfg):
    """``[(key, old, new)]`` for the keys whose value differs between the yaml text of an earlier
    run and ``cfg``. Keys on one side only (added or removed by a code update) and the ignored
    keys are left out."""
    old = _flatten(yaml.safe_load(old_yaml) or {})
    new = _flatten(yaml.safe_load(cfg.dump()))
    return [(key, old[key], new[key]) for key in sorted(set(old) & set(new))
            if key not in IGNORED_KEYS and old[key] != new[key]]


class ResumePlan(object):
    """``checkpoint`` ('' for a fresh start), its ``iteration``, and the config ``changes`` since it
    (None when the checkpoint's config is unknown)."""

    def __init__(self, checkpoint="", iteration=0, changes=(), config_source=None, note=None):
        self.checkpoint = checkpoint
        self.iteration = iteration
        self.changes = None if changes is None else list(changes)
        self.config_source = config_source
        self.note = note

    def _listed(self, belongs):
        return "; ".join(f"{key} {old!r} -> {new!r}" for key, old, new in self.changes or () if belongs(key))

    def model_changes(self):
        """``"KEY old -> new; ..."`` for the MODEL keys that changed ('' when none or unknown)."""
        return self._listed(_is_model_key)

    def describe(self, max_iter):
        """Lines for the log: what this run will do."""
        if not self.checkpoint:
            return [self.note or "Starting a new run at iteration 0"]
        lines = [f"Resuming from {self.checkpoint} at iteration {self.iteration} of {max_iter}"]
        if self.iteration == max_iter:
            lines.append(f"Training is already complete at iteration {max_iter}: nothing left to train")
        if self.changes is None:
            lines.append("The checkpoint's config is unknown (no config in it, no config.yml): changes cannot be listed")
            return lines
        if not self.changes:
            lines.append(f"Config unchanged since the checkpoint ({self.config_source})")
            return lines
        groups = (
            ("Schedule changed since the checkpoint: {}; the new schedule applies from iteration " + str(self.iteration),
             lambda key: key in SCHEDULE_KEYS),
            ("Model config changed since the checkpoint: {}; its weights must still fit the model exactly",
             _is_model_key),
            ("Other config changes since the checkpoint, in effect from iteration " + str(self.iteration) + ": {}",
             lambda key: key not in SCHEDULE_KEYS and not _is_model_key(key)),
        )
        for template, belongs in groups:
            listed = self._listed(belongs)
            if listed:
                lines.append(template.format(listed))
        return lines


def plan_resume(cfg, resume):
    """The :class:`ResumePlan` for a run of ``cfg``; raises :class:`ResumeError` (or the
    checkpoint's read error) when the folder and ``resume`` conflict. Reads only."""
    folder = cfg.OUTPUT_DIR
    found = existing_checkpoints(folder)
    if not resume:
        if found:
            raise ResumeError(
                f"OUTPUT_DIR {folder} already holds checkpoints of an earlier run ({', '.join(found[:4])}"
                f"{', ...' if len(found) > 4 else ''}). Pass --resume to continue that run (this config's schedule "
                "applies from its last iteration), or choose another OUTPUT_DIR to start a new one.")
        return ResumePlan()
    path = last_checkpoint_in(folder)
    if not path:
        if found:
            raise ResumeError(f"--resume: OUTPUT_DIR {folder} holds {', '.join(found[:4])} but no "
                              f"{LAST_CHECKPOINT_FILE} naming the newest; write that file's name into "
                              f"{os.path.join(folder, LAST_CHECKPOINT_FILE)} to resume from it")
        return ResumePlan(note=f"--resume: no checkpoint in OUTPUT_DIR {folder or '(none)'}; starting a new run at iteration 0")
    if not os.path.isfile(path):
        raise ResumeError(f"--resume: {os.path.join(folder, LAST_CHECKPOINT_FILE)} names {path}, which does not exist")
    saved = read_checkpoint(path, mmap=True)
    iteration = int(saved.get("iteration", 0))
    if iteration > cfg.SOLVER.MAX_ITER:
        raise ResumeError(f"--resume: SOLVER.MAX_ITER {cfg.SOLVER.MAX_ITER} is below the iteration of the checkpoint "
                          f"to continue ({path}: iteration {iteration}); raise SOLVER.MAX_ITER or choose another "
                          "OUTPUT_DIR")
    old_config, source = saved.get("config"), f"the config saved in {os.path.basename(path)}"
    if not isinstance(old_config, str):
        old_config, source = _read_text(os.path.join(folder, "config.yml")), os.path.join(folder, "config.yml")
    changes = config_changes(old_config, cfg) if old_config is not None else None
    return ResumePlan(path, iteration, changes, source)


def _read_text(path):
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return None
