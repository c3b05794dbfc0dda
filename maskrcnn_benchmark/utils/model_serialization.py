"""Matching a loaded state dict onto a model's parameter names, with a report of what did not fit.

Pretrained files name parameters relative to a sub-module (``layer1.0.conv1.weight`` for a
backbone body that lives at ``backbone.body.layer1.0.conv1.weight``), so a loaded key matches the
model key it equals or that ends with ``"." + key``; the longest such match wins.

Files written by maskrcnn-benchmark and the code bases built on it (the FCOS / ATSS / PAA forks, the
Sampling-Free release) differ from this model in ways that carry no information, and load as if
they did not:

- a tensor whose shape differs only by dimensions of size 1 (their per-level ``Scale`` is ``[1]``,
  ours 0-d) is reshaped;
- a module may declare ``legacy_child_names`` (``{"centerness": "quality_pred"}``): the file's
  entries under the old child name load into the new one;
- a file may store what the model computes (maskrcnn-benchmark saves its cell anchors): a file entry
  named like a non-persistent buffer of the model is compared with it instead of loaded, with a
  warning when they differ (e.g. weights made with another ``MODEL.BOX_CONVENTION``);
- a module may declare ``buffers_not_in_weights`` (training state such as the Sampling-Free loss
  scaler's running ratio): a file without them loads completely (they keep their initial values),
  except for ``match="exact"``, which resumes a run and needs them.
"""
import logging
from collections import OrderedDict

logger = logging.getLogger(__name__)


def _matches(model_key, loaded_key):
    return model_key == loaded_key or model_key.endswith("." + loaded_key)


def _without_unit_dims(shape):
    return tuple(d for d in shape if d != 1)


def align_and_update_state_dicts(model_state_dict, loaded_state_dict, optional=()):
    """Copy into ``model_state_dict`` (in place) every loaded tensor whose name matches a model key
    and whose shape agrees (up to dimensions of size 1). Logs and returns ``{"missing": [...],
    "unexpected": [...], "mismatched": [...], "defaulted": [...]}`` (model keys left untouched,
    loaded keys used nowhere, shape conflicts, and the missing keys that are in ``optional`` -- those
    are not in "missing")."""
    used = set()
    missing, mismatched, defaulted = [], [], []
    for model_key in model_state_dict:
        candidates = [k for k in loaded_state_dict if _matches(model_key, k)]
        if not candidates:
            (defaulted if model_key in optional else missing).append(model_key)
            continue
        best = max(candidates, key=len)
        used.add(best)
        loaded = loaded_state_dict[best]
        target_shape = tuple(model_state_dict[model_key].shape)
        if tuple(loaded.shape) != target_shape:
            if _without_unit_dims(loaded.shape) != _without_unit_dims(target_shape):
                mismatched.append(f"{model_key}: model {target_shape} vs loaded {best} {tuple(loaded.shape)}")
                missing.append(model_key)
                continue
            loaded = loaded.reshape(target_shape)
        model_state_dict[model_key] = loaded
    unexpected = [k for k in loaded_state_dict if k not in used]

    if mismatched:
        logger.warning("shape mismatch, kept the model's own values: %s", "; ".join(mismatched))
    if missing:
        logger.info("%d model parameters/buffers not in the loaded weights: %s", len(missing), ", ".join(missing))
    if unexpected:
        logger.info("%d loaded entries without a model counterpart: %s", len(unexpected), ", ".join(unexpected))
    if defaulted:
        logger.debug("training-state buffers not in the loaded weights, kept at their initial values: %s",
                     ", ".join(defaulted))
    return {"missing": missing, "unexpected": unexpected, "mismatched": mismatched, "defaulted": defaulted}


def _declared(model, attribute):
    """``(prefix, value)`` of every sub-module of ``model`` whose class sets ``attribute``."""
    for prefix, module in model.named_modules():
        value = getattr(type(module), attribute, None)
        if value:
            yield (prefix + "." if prefix else ""), value


def rename_legacy_children(model, loaded_state_dict):
    """``loaded_state_dict`` with the entries under a child name that a module of ``model`` lists in
    its ``legacy_child_names`` moved to the current name (unless the file has both)."""
    renames = [(prefix + old + ".", prefix + new + ".")
               for prefix, names in _declared(model, "legacy_child_names") for old, new in names.items()]
    if not renames:
        return loaded_state_dict
    renamed = OrderedDict()
    for key, value in loaded_state_dict.items():
        for old, new in renames:
            if key.startswith(old) and new + key[len(old):] not in loaded_state_dict:
                key = new + key[len(old):]
                break
        renamed[key] = value
    return renamed


def optional_entries(model):
    """State-dict keys of the buffers that modules of ``model`` list in ``buffers_not_in_weights``."""
    return {prefix + name for prefix, names in _declared(model, "buffers_not_in_weights") for name in names}


def check_stored_buffers(model, loaded_state_dict, atol=1e-4):
    """Take out of ``loaded_state_dict`` the entries that name a non-persistent buffer of ``model``
    (something the model computes, such as maskrcnn-benchmark's stored cell anchors), comparing each
    with the model's own. Returns ``(remaining entries, [differences])``; a difference is logged as
    a warning (the model keeps its own values)."""
    persistent = set(model.state_dict())
    # every name of a buffer (a module may be reachable under two names, e.g. rpn.anchor_generator)
    computed = {name: buffer for name, buffer in model.named_buffers(remove_duplicate=False) if name not in persistent}
    if not computed:
        return loaded_state_dict, []
    remaining, differences = OrderedDict(), []
    for key, value in loaded_state_dict.items():
        own = computed.get(key)
        if own is None:
            remaining[key] = value
            continue
        if tuple(own.shape) != tuple(value.shape):
            differences.append(f"{key}: file {tuple(value.shape)} vs model {tuple(own.shape)}")
        elif own.numel():
            diff = float((own.detach().cpu().double() - value.double()).abs().max())
            if diff > atol:
                differences.append(f"{key}: max difference {diff:.4g}")
    if differences:
        logger.warning("the weights file stores values this model computes, and they differ (the model keeps its "
                       "own; weights made with other anchor settings or another MODEL.BOX_CONVENTION?): %s",
                       "; ".join(differences))
    return remaining, differences


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
    untouched. ``"partial"`` (pretrained backbones) loads whatever fits. Files of maskrcnn-benchmark's
    layout load as the module docstring says (``"exact"`` does not excuse ``buffers_not_in_weights``)."""
    model_state_dict = model.state_dict()
    loaded_state_dict = strip_prefix_if_present(loaded_state_dict, prefix="module.")
    loaded_state_dict = rename_legacy_children(model, loaded_state_dict)
    loaded_state_dict, stored_differences = check_stored_buffers(model, loaded_state_dict)
    optional = optional_entries(model) if match != "exact" else ()
    report = align_and_update_state_dicts(model_state_dict, loaded_state_dict, optional)
    report["stored_buffer_differences"] = stored_differences
    if match != "partial":
        problems = _shortfall(model, report, match)
        if problems:
            raise IncompatibleWeightsError("; ".join(problems))
    model.load_state_dict(model_state_dict)
    return report
