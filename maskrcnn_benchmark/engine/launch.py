"""What tools/train_net.py and tools/test_net.py share: config, process group, logging, seeding and
the final evaluation on every DATASETS.TEST entry (the command line itself is in ``cli.py``)."""
import datetime
import os
import random

import numpy as np
import torch
import torch.distributed as dist

from maskrcnn_benchmark.config import cfg as default_cfg
from maskrcnn_benchmark.data import make_data_loader
from maskrcnn_benchmark.data.datasets.registration import register_datasets_from_config
from maskrcnn_benchmark.utils.collect_env import collect_env_info
from maskrcnn_benchmark.utils.comm import get_rank, get_world_size, synchronize
from maskrcnn_benchmark.utils.device import resolve_device
from maskrcnn_benchmark.utils.logger import FILE_ONLY, setup_logger
from maskrcnn_benchmark.utils.miscellaneous import mkdir

from .cli import make_parser  # noqa: F401  (kept importable from here, as before)
from .inference import evaluation_kinds, inference


def load_config(config_file, opts):
    """A frozen copy of the defaults merged with ``config_file`` and the KEY VALUE ``opts``."""
    cfg = default_cfg.clone()
    if config_file:
        cfg.merge_from_file(config_file)
    cfg.merge_from_list(list(opts))
    cfg.freeze()
    register_datasets_from_config(cfg)  # DATASETS.REGISTER names resolve from here on
    return cfg


def init_distributed(cfg, local_rank):
    """Join the process group torchrun describes (WORLD_SIZE > 1): NCCL on GPUs, gloo on CPU, with
    collectives that give up after DIST_TIMEOUT_MINUTES. Returns whether the run is distributed."""
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    if world_size <= 1:
        return False
    if not cfg.DIST_TIMEOUT_MINUTES > 0:
        raise ValueError(f"DIST_TIMEOUT_MINUTES must be > 0, got {cfg.DIST_TIMEOUT_MINUTES}")
    use_cuda = resolve_device(cfg.MODEL.DEVICE).type == "cuda"
    if use_cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend="nccl" if use_cuda else "gloo", init_method="env://",
                            timeout=datetime.timedelta(minutes=cfg.DIST_TIMEOUT_MINUTES))
    synchronize()
    return True


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def setup_run(cfg, args, name):
    """Create OUTPUT_DIR, the logger (console + OUTPUT_DIR/log.txt on rank 0) and log the setup;
    the environment report and the full config go to log.txt only."""
    if cfg.OUTPUT_DIR:
        mkdir(cfg.OUTPUT_DIR)
    logger = setup_logger("maskrcnn_benchmark", cfg.OUTPUT_DIR, get_rank())
    logger.info("%s: using %d process(es), device %s", name, get_world_size(), resolve_device(cfg.MODEL.DEVICE))
    logger.info(args)
    logger.info("Environment:\n%s", collect_env_info(), extra=FILE_ONLY)
    if args.config_file:
        with open(args.config_file) as handle:
            logger.info("Loaded configuration file %s:\n%s", args.config_file, handle.read(), extra=FILE_ONLY)
    logger.info("Running with config:\n%s", cfg, extra=FILE_ONLY)
    if cfg.OUTPUT_DIR:
        logger.info("Environment report and full config: %s", os.path.join(cfg.OUTPUT_DIR, "log.txt"))
    return logger


def run_test(cfg, model, distributed):
    """Evaluate ``model`` on every DATASETS.TEST entry; results of the main process (a list)."""
    model = getattr(model, "module", model)
    iou_types, box_only = evaluation_kinds(cfg)
    names = list(cfg.DATASETS.TEST)
    loaders = make_data_loader(cfg, is_train=False, is_distributed=distributed)
    results = []
    for name, loader in zip(names, loaders):
        output_folder = os.path.join(cfg.OUTPUT_DIR, "inference", name) if cfg.OUTPUT_DIR else None
        results.append(inference(
            model, loader, dataset_name=name, iou_types=iou_types, box_only=box_only,
            bbox_aug=cfg.TEST.BBOX_AUG.ENABLED, device=resolve_device(cfg.MODEL.DEVICE),
            expected_results=cfg.TEST.EXPECTED_RESULTS,
            expected_results_sigma_tol=cfg.TEST.EXPECTED_RESULTS_SIGMA_TOL, output_folder=output_folder,
            coco_evaluator=cfg.TEST.COCO_EVALUATOR, box_convention=cfg.MODEL.BOX_CONVENTION,
        ))
        synchronize()
    return results
