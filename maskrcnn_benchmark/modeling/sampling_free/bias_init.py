"""Optimal bias initialisation (paper eq. 18-19), measured from data.

A classification layer starts where its cross-entropy is smallest: the predicted foreground
probability equals the foreground frequency pi = N^f / N of the samples it is trained on. N and N^f
are counted with each head's own anchors (or points) and its own assignment on a sample of the
training set; no network forward is needed. The heads are the ``SamplingFreeHead`` modules of the
model whose stage asks for ``BIAS_INIT: optimal`` (see head.py for the counting template).

The counts are cached in ``OUTPUT_DIR/sampling_free_counts.json`` under a key made of everything
they depend on: the model and input config, the sampled image indices and the sampled targets
themselves (boxes, labels, image sizes), so an edited annotation file is recounted.

The training transforms are random (a size among MIN_SIZE_TRAIN, horizontal flips): each counted
image is transformed under generators seeded from SEED and its index, so that two passes (two
runs, two processes) count the same targets; the generators' states are restored afterwards.
"""
import contextlib
import hashlib
import json
import logging
import os
import random

import numpy as np
import torch
import torch.distributed as dist

from maskrcnn_benchmark.utils.checkpoint import capture_rng_state, restore_rng_state

from .head import SamplingFreeHead
from .priors import prior_to_bias, sigmoid_prior_from_counts, softmax_bias_from_counts  # noqa: F401 (re-exported)

CACHE_FILE = "sampling_free_counts.json"
# Per-image fingerprints are summed across images (and ranks): 52 bits each keeps the sum of
# any realistic number of images exact in int64.
_FINGERPRINT_BITS = 52


def optimal_bias_heads(model):
    """The Sampling-Free heads of ``model`` whose stage asks for ``BIAS_INIT: optimal``."""
    return [m for m in model.modules() if isinstance(m, SamplingFreeHead) and m.wants_optimal_bias]


def target_fingerprint(index, target):
    """A 52-bit integer that changes with anything of the target the counts depend on: the image
    index and size, the boxes (and their mode) and the labels."""
    digest = hashlib.sha1()
    digest.update(repr((int(index), tuple(target.size), target.mode)).encode())
    digest.update(target.bbox.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    if target.has_field("labels"):
        digest.update(target.get_field("labels").to("cpu", torch.int64).contiguous().numpy().tobytes())
    return int(digest.hexdigest(), 16) % (1 << _FINGERPRINT_BITS)


def _config_key(cfg, indices):
    # The counts depend on the anchors, the assignment and the input sizes (the model and input
    # sections) and on which images are counted.
    relevant = {
        "MODEL": cfg.MODEL.dump(),
        "INPUT": cfg.INPUT.dump(),
        "DATASETS.TRAIN": list(cfg.DATASETS.TRAIN),
        "SIZE_DIVISIBILITY": cfg.DATALOADER.SIZE_DIVISIBILITY,
        "indices": list(indices),
    }
    return hashlib.sha1(json.dumps(relevant, sort_keys=True).encode()).hexdigest()


def cache_key(cfg, indices, data_fingerprint):
    """Key of the counts of ``cfg``'s heads over the images ``indices`` whose targets sum to
    ``data_fingerprint`` (see ``target_fingerprint``)."""
    combined = "{}:{}".format(_config_key(cfg, indices), int(data_fingerprint))
    return hashlib.sha1(combined.encode()).hexdigest()[:16]


def _read_cache(path):
    if not os.path.exists(path):
        return {}
    with open(path) as handle:
        try:
            return json.load(handle)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: corrupt Sampling-Free count cache ({err}); delete it to recount") from err


def _write_cache_atomically(path, content):
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(content, handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def sample_indices(dataset_size, num_images, seed):
    """A fixed, seeded choice of images, identical on every rank and for every world size."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(dataset_size, generator=generator)
    return order[: min(num_images, dataset_size)].tolist()


def _distributed():
    world_size = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    return (dist.get_rank() if world_size > 1 else 0), world_size


def _all_reduce_sum(tensors, world_size):
    """Sum each tensor over all ranks (one collective for all of them)."""
    if world_size == 1:
        return tensors
    stacked = torch.cat([t.flatten() for t in tensors])
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    stacked = stacked.to(device)
    dist.all_reduce(stacked)
    stacked = stacked.cpu()
    reduced, offset = [], 0
    for tensor in tensors:
        reduced.append(stacked[offset: offset + tensor.numel()].view_as(tensor))
        offset += tensor.numel()
    return reduced


@contextlib.contextmanager
def seeded_generators(seed):
    """Python's, numpy's and torch's default generators seeded with ``seed`` inside the block and
    restored to their previous states after it."""
    state = capture_rng_state()
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        restore_rng_state(state)


def image_seed(seed, index):
    """The seed of the transforms of image ``index`` in the counting pass of a run seeded ``seed``."""
    return (int(seed) * 1_000_003 + int(index)) % 2 ** 31


def load_targets(dataset, indices, rank=0, world_size=1, seed=0):
    """This rank's share of the targets at ``indices`` (as ``(index, target)``, each through the
    dataset's transforms seeded by ``image_seed(seed, index)``) and the fingerprint of all of them
    (summed over ranks)."""
    targets = []
    fingerprint = 0
    for idx in indices[rank::world_size]:
        with seeded_generators(image_seed(seed, idx)):
            _, target, _ = dataset[idx]
        targets.append((idx, target))
        fingerprint += target_fingerprint(idx, target)
    (total,) = _all_reduce_sum([torch.tensor([fingerprint], dtype=torch.int64)], world_size)
    return targets, int(total)


def count_targets(heads, targets, world_size=1):
    """Sum each head's counts over ``targets`` (this rank's ``(index, target)`` pairs), then over ranks."""
    totals = [head.empty_counts() for head in heads]
    for _, target in targets:
        width, height = target.size
        for i, head in enumerate(heads):
            totals[i] += torch.as_tensor(head.count_samples([target], [(height, width)]), dtype=torch.float64)
    return _all_reduce_sum(totals, world_size)


def count_over_dataset(heads, dataset, indices, rank=0, world_size=1, seed=0):
    """Sum each head's counts over this rank's share of ``indices``, then over all ranks."""
    targets, _ = load_targets(dataset, indices, rank, world_size, seed)
    return count_targets(heads, targets, world_size)


def measure_and_apply_optimal_bias(cfg, model, dataset, logger=None):
    """Count N and N^f for every head that asks for the optimal bias, cache them, set the biases.

    Returns ``{head_name: info}`` with what each head set (empty when no head asks for it).
    """
    logger = logger or logging.getLogger(__name__)
    heads = optimal_bias_heads(model)
    if not heads:
        return {}
    if len(dataset) == 0:
        raise ValueError("optimal bias initialisation needs a non-empty training set")

    rank, world_size = _distributed()
    indices = sample_indices(len(dataset), int(cfg.MODEL.SAMPLING_FREE.SAMPLE_IMAGES), cfg.SEED)
    targets, fingerprint = load_targets(dataset, indices, rank, world_size, cfg.SEED)
    key = cache_key(cfg, indices, fingerprint)
    cache_path = os.path.join(cfg.OUTPUT_DIR, CACHE_FILE) if cfg.OUTPUT_DIR else None
    cache = _read_cache(cache_path) if cache_path else {}
    names = [head.sampling_free_name for head in heads]

    if key in cache and all(name in cache[key] for name in names):
        totals = [torch.tensor(cache[key][name], dtype=torch.float64) for name in names]
        logger.info("Sampling-Free: counts for %s read from %s (key %s)", names, cache_path, key)
    else:
        logger.info("Sampling-Free: counting samples of %s over %d training images", names, len(indices))
        totals = count_targets(heads, targets, world_size)
        if cache_path and rank == 0:
            os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
            cache[key] = {name: total.tolist() for name, total in zip(names, totals)}
            _write_cache_atomically(cache_path, cache)

    applied = {}
    for name, head, total in zip(names, heads, totals):
        info = head.set_bias_from_counts(total)
        applied[name] = info
        logger.info("Sampling-Free: %s counts %s -> %s", name, [round(v, 1) for v in total.flatten().tolist()[:8]], info)
    return applied


def classification_grad_norms(model):
    """L2 norm of the gradient at each Sampling-Free head's last classification layer.

    The trainer logs the result as ``sf_<name>_cls_grad_norm`` (the paper's argument is about this
    gradient's magnitude).
    """
    norms = {}
    for module in model.modules():
        if not isinstance(module, SamplingFreeHead):
            continue
        grads = [p.grad.detach().flatten() for p in module.classification_layer().parameters() if p.grad is not None]
        if grads:
            norms[f"sf_{module.sampling_free_name}_cls_grad_norm"] = torch.cat(grads).norm().item()
    return norms
