"""Datasets, samplers and data loaders from the config."""
import bisect
import logging

import torch
import torch.distributed as dist
import torch.utils.data

from maskrcnn_benchmark.config.paths_catalog import DatasetCatalog

from . import datasets as D
from . import samplers
from .categories import check_masks_available, check_num_classes
from .collate_batch import BatchCollator
from .datasets.registration import register_datasets_from_config
from .transforms import build_transforms

logger = logging.getLogger(__name__)


def _world():
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def build_dataset(dataset_list, transforms, dataset_catalog, is_train=True):
    """One dataset per name of ``dataset_list``; for training they are concatenated into one
    (the returned list then has a single element)."""
    if not isinstance(dataset_list, (list, tuple)):
        raise TypeError("DATASETS.TRAIN / DATASETS.TEST must be a list of names, got {!r}".format(
            dataset_list))
    if len(dataset_list) == 0:
        raise ValueError("no dataset given: set DATASETS.{} in the config".format(
            "TRAIN" if is_train else "TEST"))
    datasets = []
    for name in dataset_list:
        entry = dataset_catalog.get(name)
        factory = getattr(D, entry["factory"])
        args = dict(entry["args"])
        if entry["factory"] == "COCODataset":
            args["remove_images_without_annotations"] = is_train
        if entry["factory"] == "PascalVOCDataset":
            args["use_difficult"] = not is_train
        args["transforms"] = transforms
        try:
            dataset = factory(**args)
        except FileNotFoundError as err:
            raise FileNotFoundError("dataset {!r} of the DatasetCatalog: {}; {}".format(
                name, err, dataset_catalog.how_to_fix(name) if hasattr(dataset_catalog, "how_to_fix") else "")) from err
        if entry.get("metadata"):
            dataset.metadata = entry["metadata"]
        if is_train and len(dataset) == 0:
            raise ValueError("dataset {!r} has no image with a usable annotation (a non-crowd box of at least 1 x 1 "
                             "pixel), so there is nothing to train on".format(name))
        datasets.append(dataset)

    if not is_train:
        return datasets
    return [datasets[0] if len(datasets) == 1 else D.ConcatDataset(datasets)]


def make_data_sampler(dataset, shuffle, distributed, seed=0):
    """Seeded, epoch-aware shuffling when ``shuffle``; in-order otherwise."""
    if distributed:
        return samplers.DistributedSampler(dataset, shuffle=shuffle, seed=seed)
    if shuffle:
        return samplers.DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=seed)
    return torch.utils.data.sampler.SequentialSampler(dataset)


def _aspect_ratios(dataset):
    ratios = []
    for i in range(len(dataset)):
        info = dataset.get_img_info(i)
        ratios.append(float(info["height"]) / float(info["width"]))
    return ratios


def _quantize(values, bins):
    return [bisect.bisect_right(sorted(bins), v) for v in values]


def make_batch_data_sampler(dataset, sampler, aspect_grouping, images_per_batch, num_iters=None,
                            start_iter=0):
    """Batches of ``images_per_batch`` indices; grouped by aspect ratio when ``aspect_grouping``
    (a list of height / width boundaries) is non-empty; iteration-based when ``num_iters``."""
    if aspect_grouping:
        group_ids = _quantize(_aspect_ratios(dataset), aspect_grouping)
        batch_sampler = samplers.GroupedBatchSampler(sampler, group_ids, images_per_batch,
                                                     drop_uneven=False)
    else:
        batch_sampler = torch.utils.data.sampler.BatchSampler(sampler, images_per_batch,
                                                              drop_last=False)
    if num_iters is not None:
        batch_sampler = samplers.IterationBasedBatchSampler(batch_sampler, num_iters, start_iter)
    return batch_sampler


def _images_per_process(total, key, world_size):
    if total % world_size != 0:
        raise ValueError("{} ({}) is the global batch size and must be divisible by the number of "
                         "processes ({})".format(key, total, world_size))
    return total // world_size


def make_data_loader(cfg, is_train=True, is_distributed=False, start_iter=0, is_for_period=False):
    """The training loader (a single DataLoader of ``SOLVER.MAX_ITER - start_iter`` batches), or
    one test loader per ``DATASETS.TEST`` entry (a list); with ``is_for_period`` the first test
    dataset is returned as a single loader for periodic validation during training.

    ``SOLVER.IMS_PER_BATCH`` / ``TEST.IMS_PER_BATCH`` are global batch sizes, split evenly across
    processes. Shuffling follows ``cfg.SEED``. Each loader's ``dataset`` carries the evaluation
    hooks (``get_img_info``, ``coco`` or ``get_groundtruth``).
    """
    world_size, _ = _world()
    if is_train:
        images_per_gpu = _images_per_process(cfg.SOLVER.IMS_PER_BATCH, "SOLVER.IMS_PER_BATCH", world_size)
        shuffle, num_iters = True, cfg.SOLVER.MAX_ITER
        dataset_list = cfg.DATASETS.TRAIN
    else:
        images_per_gpu = _images_per_process(cfg.TEST.IMS_PER_BATCH, "TEST.IMS_PER_BATCH", world_size)
        shuffle, num_iters, start_iter = False, None, 0
        dataset_list = cfg.DATASETS.TEST

    register_datasets_from_config(cfg)
    # the flip augmentation of BBOX_AUG is done by the tester on raw images
    if not is_train and cfg.TEST.BBOX_AUG.ENABLED:
        transforms = None
    else:
        transforms = build_transforms(cfg, is_train)
    datasets = build_dataset(list(dataset_list), transforms, DatasetCatalog, is_train or is_for_period)
    # a training batch may take the next image in place of a corrupt one; an evaluation must never
    # score one image in place of another, so there the corrupt image is left out of the scored set
    skip_policy = "substitute" if is_train else "drop"
    names = list(dataset_list) if len(datasets) == len(dataset_list) else ["+".join(dataset_list)]
    for name, dataset in zip(names, datasets):
        check_num_classes(cfg, dataset, name)
        check_masks_available(cfg, dataset, name)
        for member in getattr(dataset, "datasets", [dataset]):
            member.corrupt_image_policy = skip_policy if cfg.DATALOADER.SKIP_CORRUPT_IMAGES else "error"

    aspect_grouping = [1] if cfg.DATALOADER.ASPECT_RATIO_GROUPING else []
    loaders = []
    for dataset in datasets:
        sampler = make_data_sampler(dataset, shuffle, is_distributed, seed=cfg.SEED)
        batch_sampler = make_batch_data_sampler(dataset, sampler, aspect_grouping, images_per_gpu,
                                                num_iters, start_iter)
        # worker RNGs (random flips, scales) follow the seed as well
        generator = torch.Generator()
        generator.manual_seed(cfg.SEED + start_iter)
        loaders.append(torch.utils.data.DataLoader(
            dataset,
            num_workers=cfg.DATALOADER.NUM_WORKERS,
            batch_sampler=batch_sampler,
            collate_fn=BatchCollator(cfg.DATALOADER.SIZE_DIVISIBILITY),
            generator=generator,
        ))
    if is_train or is_for_period:
        return loaders[0]
    return loaders
