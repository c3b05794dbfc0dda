#!/usr/bin/env python
"""Train a detector from a yaml config, then evaluate it on DATASETS.TEST.

    python tools/train_net.py --config-file configs/shapes/retinanet_R-18-FPN_shapes.yaml SOLVER.MAX_ITER 200
    python tools/train_net.py --config-file ... OUTPUT_DIR output/run1 --resume     # continue output/run1
    torchrun --nproc_per_node=2 tools/train_net.py --config-file ... MODEL.DEVICE cpu

An OUTPUT_DIR that already holds checkpoints is only continued with --resume (otherwise the run
stops and says so); the config's schedule then applies from the checkpoint's iteration, and a
model that no longer fits the checkpoint is refused. One run at a time holds an OUTPUT_DIR.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from maskrcnn_benchmark.engine.cli import make_parser, parse_args  # noqa: E402  (argparse only)


def build_parser():
    parser = make_parser("Train a detector (maskrcnn_benchmark)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run whose checkpoints are in OUTPUT_DIR (required when there are any)")
    parser.add_argument("--skip-test", dest="skip_test", action="store_true",
                        help="do not evaluate the final model")
    return parser


def claim_output_dir(cfg, resume):
    """The main process locks OUTPUT_DIR and decides how the run starts (reading only); every
    process gets the plan, or the error. Returns ``(lock or None, plan)``."""
    from maskrcnn_benchmark.engine.resume import plan_resume
    from maskrcnn_benchmark.engine.run_lock import OutputDirLock
    from maskrcnn_benchmark.utils.comm import is_main_process, on_main_process

    lock = OutputDirLock(cfg.OUTPUT_DIR) if cfg.OUTPUT_DIR and is_main_process() else None

    def decide():
        if lock is not None:
            lock.acquire()
        try:
            return plan_resume(cfg, resume)
        except BaseException:
            if lock is not None:
                lock.release()
            raise

    return lock, on_main_process(decide)


def train(cfg, local_rank, distributed, logger, plan):
    from maskrcnn_benchmark.data import make_data_loader
    from maskrcnn_benchmark.engine.hooks import schedule_lr
    from maskrcnn_benchmark.engine.resume import ResumeError
    from maskrcnn_benchmark.engine.trainer import do_train
    from maskrcnn_benchmark.modeling.detector import build_detection_model
    from maskrcnn_benchmark.solver import make_lr_scheduler, make_optimizer
    from maskrcnn_benchmark.utils.checkpoint import CheckpointError, DetectronCheckpointer
    from maskrcnn_benchmark.utils.comm import data_parallel, get_rank
    from maskrcnn_benchmark.utils.device import resolve_device
    from maskrcnn_benchmark.utils.miscellaneous import save_config

    model = build_detection_model(cfg)
    device = resolve_device(cfg.MODEL.DEVICE)
    model.to(device)
    optimizer = make_optimizer(cfg, model)
    scheduler = make_lr_scheduler(cfg, optimizer)
    if distributed:
        model = data_parallel(model, device, local_rank)

    checkpointer = DetectronCheckpointer(cfg, model, optimizer, scheduler, cfg.OUTPUT_DIR,
                                         save_to_disk=get_rank() == 0, logger=logger)
    arguments = {"iteration": 0}
    if plan.checkpoint:
        # the same entries and shapes both ways: another architecture is refused here, before any write
        try:
            arguments.update(checkpointer.load(plan.checkpoint, use_latest=False, match="exact"))
        except CheckpointError as err:
            raise ResumeError(f"--resume refused, the run in OUTPUT_DIR {cfg.OUTPUT_DIR} trained another model "
                              f"({plan.model_changes() or 'no model key differs in the config'}): {err}. "
                              "Train this model in another OUTPUT_DIR.") from err
        logger.info("Resumed at iteration %d; learning rate %.6g (this config's schedule)",
                    arguments["iteration"], schedule_lr(optimizer))
    elif cfg.MODEL.WEIGHT:
        # initial weights only: a fresh run starts at iteration 0 with this config's optimizer
        extras = DetectronCheckpointer(cfg, model, logger=logger).load(cfg.MODEL.WEIGHT, use_latest=False)
        if "iteration" in extras:
            logger.info("MODEL.WEIGHT %s is a training checkpoint (iteration %s): only its weights are used; "
                        "--resume continues a run", cfg.MODEL.WEIGHT, extras["iteration"])
    if cfg.OUTPUT_DIR:
        config_path = os.path.join(cfg.OUTPUT_DIR, "config.yml")
        logger.info("Saving config into: %s", config_path)
        save_config(cfg, config_path)

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
    args = parse_args(build_parser(), argv)

    import torch

    from maskrcnn_benchmark.engine.launch import init_distributed, load_config, run_test, seed_everything, setup_run
    from maskrcnn_benchmark.solver import check_solver_config
    from maskrcnn_benchmark.utils.comm import collective_failures_explained, get_rank, get_world_size, synchronize
    from maskrcnn_benchmark.utils.device import resolve_device
    from maskrcnn_benchmark.utils.env import setup_environment
    from maskrcnn_benchmark.utils.logger import FILE_ONLY

    cfg = load_config(args.config_file, args.opts)
    resolve_device(cfg.MODEL.DEVICE)  # a device this machine lacks is refused before anything is written
    setup_environment()
    distributed = init_distributed(cfg, args.local_rank)
    lock = None
    try:
        with collective_failures_explained(cfg.DIST_TIMEOUT_MINUTES):
            check_solver_config(cfg, get_world_size())
            lock, plan = claim_output_dir(cfg, args.resume)
            logger = setup_run(cfg, args, "train_net")
            for line in plan.describe(cfg.SOLVER.MAX_ITER):
                logger.info(line)
            seed_everything(cfg.SEED + get_rank())
            try:
                model = train(cfg, args.local_rank, distributed, logger, plan)
                if not args.skip_test:
                    run_test(cfg, model, distributed)
                synchronize()
            except Exception:
                logger.exception("train_net stopped", extra=FILE_ONLY)  # the reason, in log.txt too
                raise
    finally:
        if lock is not None:
            lock.release()
        if distributed:
            torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
