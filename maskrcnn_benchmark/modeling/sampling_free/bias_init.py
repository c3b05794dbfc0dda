"""Optimal bias initialisation (paper eq. 18-19), measured from data.

A classification layer starts where its cross-entropy is smallest: the predicted foreground
probability equals the foreground frequency pi = N^f / N of the samples it is trained on. N and N^f
are counted with each head's own anchors (or points) and its own assignment on a sample of the
training set; no network forward is needed.

Heads that support it carry ``sampling_free_name``, ``sampling_free_stage`` and implement
``count_samples(targets, image_sizes)`` and ``set_bias_from_counts(counts)`` (see
docs/ARCHITECTURE.md). Sigmoid heads count ``[num_binary_samples, num_foreground]``; the softmax RoI
head counts samples per class, background first.
"""
import hashlib
import json
import logging
import math
import os

import torch
import torch.distributed as dist

CACHE_FILE = "sampling_free_counts.json"


def prior_to_bias(pi):
    """The logit whose sigmoid is pi: b = -log((1 - pi) / pi)."""
    if not 0.0 < pi < 1.0:
        raise ValueError(f"a prior probability must lie in (0, 1), got {pi}")
    return -math.log((1.0 - pi) / pi)


def sigmoid_prior_from_counts(counts):
    """pi = N^f / N from ``[N, N^f]``; an empty count (no foreground) is an error, not a -inf bias."""
    total, foreground = float(counts[0]), float(counts[1])
    if total <= 0 or foreground <= 0 or foreground >= total:
        raise ValueError(
            f"cannot derive a prior from N={total:g}, N^f={foreground:g}: the sampled training images "
            "gave no foreground (or only foreground) samples; raise MODEL.SAMPLING_FREE.SAMPLE_IMAGES "
            "or check the annotations"
        )
    return foreground / total


def softmax_bias_from_counts(counts):
    """Biases whose softmax equals the class frequencies (background at index 0).

    A class never seen in the sample gets half a count, so its bias stays finite.
    """
    counts = torch.as_tensor(counts, dtype=torch.float64).clamp(min=0.5)
    return torch.log(counts / counts.sum())


def optimal_bias_heads(cfg, model):
    """The heads of ``model`` whose stage asks for ``BIAS_INIT: optimal``."""
    heads = []
    for module in model.modules():
        if not hasattr(module, "count_samples") or not hasattr(module, "sampling_free_stage"):
            continue
        if cfg.MODEL.SAMPLING_FREE[module.sampling_free_stage].BIAS_INIT == "optimal":
            heads.append(module)
    return heads


def _cache_key(cfg, num_images):
    # The counts depend on the anchors, the assignment, the input sizes and the data, i.e. on the
    # model and input sections and the training set: hash exactly those.
    relevant = {
        "MODEL": cfg.MODEL.dump(),
        "INPUT": cfg.INPUT.dump(),
        "DATASETS.TRAIN": list(cfg.DATASETS.TRAIN),
        "SIZE_DIVISIBILITY": cfg.DATALOADER.SIZE_DIVISIBILITY,
        "images": num_images,
        "seed": cfg.SEED,
    }
    return hashlib.sha1(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


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


def count_over_dataset(heads, dataset, indices, rank=0, world_size=1):
    """Sum each head's counts over this rank's share of ``indices``, then over all ranks."""
    totals = [None] * len(heads)
    for idx in indices[rank::world_size]:
        _, target, _ = dataset[idx]
        width, height = target.size
        for i, head in enumerate(heads):
            counts = torch.as_tensor(head.count_samples([target], [(height, width)]), dtype=torch.float64)
            totals[i] = counts if totals[i] is None else totals[i] + counts
    for i, head in enumerate(heads):
        if totals[i] is None:  # this rank drew no image: contribute zeros of the right shape
            totals[i] = torch.zeros_like(_probe_shape(head, dataset, indices[0]))
    if world_size > 1 and dist.is_available() and dist.is_initialized():
        stacked = torch.cat([t.flatten() for t in totals])
        backend_device = "cuda" if dist.get_backend() == "nccl" else "cpu"
        stacked = stacked.to(backend_device)
        dist.all_reduce(stacked)
        stacked = stacked.cpu()
        offset = 0
        for i, total in enumerate(totals):
            totals[i] = stacked[offset: offset + total.numel()].view_as(total)
            offset += total.numel()
    return totals


def _probe_shape(head, dataset, idx):
    _, target, _ = dataset[idx]
    width, height = target.size
    return torch.as_tensor(head.count_samples([target], [(height, width)]), dtype=torch.float64)


def measure_and_apply_optimal_bias(cfg, model, dataset, logger=None):
    """Count N and N^f for every head that asks for the optimal bias, cache them, set the biases.

    Returns ``{head_name: info}`` with what each head set (empty when no head asks for it).
    """
    logger = logger or logging.getLogger(__name__)
    heads = optimal_bias_heads(cfg, model)
    if not heads:
        return {}
    if len(dataset) == 0:
        raise ValueError("optimal bias initialisation needs a non-empty training set")

    world_size = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    rank = dist.get_rank() if world_size > 1 else 0
    num_images = int(cfg.MODEL.SAMPLING_FREE.SAMPLE_IMAGES)
    key = _cache_key(cfg, num_images)
    cache_path = os.path.join(cfg.OUTPUT_DIR, CACHE_FILE) if cfg.OUTPUT_DIR else None
    cache = _read_cache(cache_path) if cache_path else {}
    names = [head.sampling_free_name for head in heads]

    if key in cache and all(name in cache[key] for name in names):
        totals = [torch.tensor(cache[key][name], dtype=torch.float64) for name in names]
        logger.info("Sampling-Free: counts for %s read from %s (key %s)", names, cache_path, key)
    else:
        indices = sample_indices(len(dataset), num_images, cfg.SEED)
        logger.info("Sampling-Free: counting samples of %s over %d training images", names, len(indices))
        totals = count_over_dataset(heads, dataset, indices, rank, world_size)
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

    Heads expose that layer through ``classification_layer()``; the trainer logs the result as
    ``sf_<name>_cls_grad_norm`` (the paper's argument is about this gradient's magnitude).
    """
    norms = {}
    for module in model.modules():
        if not hasattr(module, "sampling_free_name") or not hasattr(module, "classification_layer"):
            continue
        grads = [p.grad.detach().flatten() for p in module.classification_layer().parameters() if p.grad is not None]
        if grads:
            norms[f"sf_{module.sampling_free_name}_cls_grad_norm"] = torch.cat(grads).norm().item()
    return norms
