"""Matching a loaded state dict onto a model's parameter names, with a report of what did not fit.

Pretrained files name parameters relative to a sub-module (``layer1.0.conv1.weight`` for a
backbone body that lives at ``backbone.body.layer1.0.conv1.weight``), so a loaded key matches the
model key it equals or that ends with ``"." + key``; the longest such match wins.
"""
import logging
from collections import OrderedDict

logger = logging.getLogger(__name__)


def _matches(model_key, loaded_key):
    return model_key == loaded_key or model_key.endswith("." + loaded_key)


def align_and_update_state_dicts(model_state_dict, loaded_state_dict):
    """Copy into ``model_state_dict`` (in place) every loaded tensor whose name matches a model key
    and whose shape agrees. Logs and returns ``{"missing": [...], "unexpected": [...],
    "mismatched": [...]}`` (model keys left untouched, loaded keys used nowhere, shape conflicts)."""
    used = set()
    missing, mismatched = [], []
    for model_key in model_state_dict:
        candidates = [k for k in loaded_state_dict if _matches(model_key, k)]
        if not candidates:
            missing.append(model_key)
            continue
        best = max(candidates, key=len)
        used.add(best)
        loaded = loaded_state_dict[best]
        if tuple(loaded.shape) != tuple(model_state_dict[model_key].shape):
            mismatched.append(f"{model_key}: model {tuple(model_state_dict[model_key].shape)} vs loaded {best} {tuple(loaded.shape)}")
            missing.append(model_key)
            continue
        model_state_dict[model_key] = loaded
    unexpected = [k for k in loaded_state_dict if k not in used]

    if mismatched:
        logger.warning("shape mismatch, kept the model's own values: %s", "; ".join(mismatched))
    if missing:
        logger.info("%d model parameters/buffers not in the loaded weights: %s", len(missing), ", ".join(missing))
    if unexpected:
        logger.info("%d loaded entries without a model counterpart: %s", len(unexpected), ", ".join(unexpected))
    return {"missing": missing, "unexpected": unexpected, "mismatched": mismatched}


def strip_prefix_if_present(state_dict, prefix):
    """Drop ``prefix`` from every key, but only when all keys carry it (e.g. ``module.`` of DDP)."""
    keys = list(state_dict.keys())
    if not keys or not all(key.startswith(prefix) for key in keys):
        return state_dict
    return OrderedDict((key[len(prefix):], value) for key, value in state_dict.items())


class IncompatibleWeightsError(ValueError):
    """Loaded weights do not cover the model as completely as the caller requires."""


def _listed(names, limit=5):
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _shortfall(model, report, match):
    """What makes ``report`` fall short of ``match`` ("parameters" or "exact"), as sentences."""
    parameters = {name for name, _ in model.named_parameters()}
    missing = report["missing"] if match == "exact" else [k for k in report["missing"] if k in parameters]
    mismatched_keys = {entry.split(":", 1)[0] for entry in report["mismatched"]}
    missing = [k for k in missing if k not in mismatched_keys]
    problems = []
    if report["mismatched"]:
        problems.append(f"{len(report['mismatched'])} shape(s) differ ({_listed(report['mismatched'], 3)})")
    if missing:
        total = len(model.state_dict()) if match == "exact" else len(parameters)
        what = "entries" if match == "exact" else "parameters"
        problems.append(f"{len(missing)} of the model's {total} {what} are missing ({_listed(missing)})")
    if match == "exact" and report["unexpected"]:
        problems.append(f"{len(report['unexpected'])} entries have no place in the model ({_listed(report['unexpected'])})")
    return problems


def load_state_dict(model, loaded_state_dict, match="partial"):
    """Load ``loaded_state_dict`` into ``model`` as far as names and shapes agree; returns the report
    of :func:`align_and_update_state_dicts`.

    ``match="parameters"`` requires every parameter of the model (with its shape), ``"exact"`` the
    same entries both ways; a shortfall raises :class:`IncompatibleWeightsError` and leaves the model
    untouched. ``"partial"`` (pretrained backbones) loads whatever fits."""
    model_state_dict = model.state_dict()
    loaded_state_dict = strip_prefix_if_present(loaded_state_dict, prefix="module.")
    report = align_and_update_state_dicts(model_state_dict, loaded_state_dict)
    if match != "partial":
        problems = _shortfall(model, report, match)
        if problems:
            raise IncompatibleWeightsError("; ".join(problems))
    model.load_state_dict(model_state_dict)
    return report
