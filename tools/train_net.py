#!/usr/bin/env python
"""Train a detector from a yaml config, then evaluate it on DATASETS.TEST.

    python tools/train_net.py --config-file configs/shapes/retinanet_R-18-FPN_shapes.yaml SOLVER.MAX_ITER 200
    torchrun --nproc_per_node=2 tools/train_net.py --config-file ... MODEL.DEVICE cpu

Re-running with the same OUTPUT_DIR resumes from its ``last_checkpoint``.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from maskrcnn_benchmark.data import make_data_loader  # noqa: E402
from maskrcnn_benchmark.data.build import build_dataset  # noqa: E402
from maskrcnn_benchmark.data.transforms import build_transforms  # noqa: E402
from maskrcnn_benchmark.config.paths_catalog import DatasetCatalog  # noqa: E402
from maskrcnn_benchmark.engine.launch import (  # noqa: E402
    init_distributed, load_config, make_parser, run_test, seed_everything, setup_run,
)
from maskrcnn_benchmark.engine.trainer import do_train  # noqa: E402
from maskrcnn_benchmark.modeling.detector import build_detection_model  # noqa: E402
from maskrcnn_benchmark.solver import make_lr_scheduler, make_optimizer  # noqa: E402
from maskrcnn_benchmark.utils.checkpoint import DetectronCheckpointer  # noqa: E402
from maskrcnn_benchmark.utils.comm import get_rank, synchronize  # noqa: E402
from maskrcnn_benchmark.utils.env import setup_environment  # noqa: E402
from maskrcnn_benchmark.utils.miscellaneous import save_config  # noqa: E402


def apply_sampling_free_bias(cfg, model, logger):
    """The paper's optimal bias init, measured on the training set, for heads that ask for it."""
    try:
        from maskrcnn_benchmark.modeling.sampling_free import measure_and_apply_optimal_bias
        from maskrcnn_benchmark.modeling.sampling_free.bias_init import optimal_bias_heads
    except ImportError:
        return
    if not optimal_bias_heads(model):
        return
    dataset = build_dataset(list(cfg.DATASETS.TRAIN), build_transforms(cfg, True), DatasetCatalog, True)[0]
    measure_and_apply_optimal_bias(cfg, model, dataset, logger=logger)


def train(cfg, local_rank, distributed, logger):
    model = build_detection_model(cfg)
    device = torch.device(cfg.MODEL.DEVICE)
    model.to(device)
    # before loading: a resumed run's checkpoint then overrides the measured biases
    apply_sampling_free_bias(cfg, model, logger)

    optimizer = make_optimizer(cfg, model)
    scheduler = make_lr_scheduler(cfg, optimizer)
    if distributed:
        model = torch.nn.parallel.DistributedDataParallel(
            model,
            device_ids=[local_rank] if device.type == "cuda" else None,
            broadcast_buffers=False,
            # heads may leave parameters unused in a batch (e.g. no foreground for the mask head)
            find_unused_parameters=True,
        )

    arguments = {"iteration": 0}
    checkpointer = DetectronCheckpointer(cfg, model, optimizer, scheduler, cfg.OUTPUT_DIR,
                                         save_to_disk=get_rank() == 0, logger=logger)
    arguments.update(checkpointer.load(cfg.MODEL.WEIGHT))

    data_loader = make_data_loader(cfg, is_train=True, is_distributed=distributed,
                                   start_iter=arguments["iteration"])
    test_period = cfg.SOLVER.TEST_PERIOD
    data_loader_val = None
    if test_period > 0:
        data_loader_val = make_data_loader(cfg, is_train=False, is_distributed=distributed, is_for_period=True)
    do_train(cfg, model, data_loader, data_loader_val, optimizer, scheduler, checkpointer, device,
             cfg.SOLVER.CHECKPOINT_PERIOD, test_period, arguments)
    return model


def main(argv=None):
    parser = make_parser("Train a detector (maskrcnn_benchmark)")
    parser.add_argument("--skip-test", dest="skip_test", action="store_true",
                        help="do not evaluate the final model")
    args = parser.parse_args(argv)
    cfg = load_config(args.config_file, args.opts)
    setup_environment()
    distributed = init_distributed(cfg, args.local_rank)
    logger = setup_run(cfg, args, "train_net")
    if cfg.OUTPUT_DIR:
        config_path = os.path.join(cfg.OUTPUT_DIR, "config.yml")
        logger.info("Saving config into: %s", config_path)
        save_config(cfg, config_path)
    seed_everything(cfg.SEED + get_rank())

    model = train(cfg, args.local_rank, distributed, logger)
    if not args.skip_test:
        run_test(cfg, model, distributed)
    synchronize()
    if distributed:
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
