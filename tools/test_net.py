#!/usr/bin/env python
"""Evaluate a trained detector on DATASETS.TEST.

    python tools/test_net.py --config-file CONFIG [--ckpt FILE] [KEY VALUE ...]

Without --ckpt the newest checkpoint of OUTPUT_DIR is used, else MODEL.WEIGHT; the weights must
cover every parameter of the model. With none of them the run stops and names where it looked,
unless --random-weights asks for an untrained model on purpose.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from maskrcnn_benchmark.engine.cli import make_parser, parse_args  # noqa: E402  (argparse only)


def build_parser():
    parser = make_parser("Evaluate a detector (maskrcnn_benchmark)")
    parser.add_argument("--ckpt", default=None,
                        help="checkpoint to evaluate (default: OUTPUT_DIR's last checkpoint, else MODEL.WEIGHT)")
    parser.add_argument("--random-weights", action="store_true",
                        help="evaluate an untrained model (only when asked: a missing checkpoint is an error)")
    return parser


def main(argv=None):
    args = parse_args(build_parser(), argv)

    import torch

    from maskrcnn_benchmark.engine.launch import init_distributed, load_config, run_test, setup_run
    from maskrcnn_benchmark.modeling.detector import build_detection_model
    from maskrcnn_benchmark.utils.checkpoint import DetectronCheckpointer, weights_to_evaluate
    from maskrcnn_benchmark.utils.comm import collective_failures_explained, synchronize
    from maskrcnn_benchmark.utils.device import resolve_device
    from maskrcnn_benchmark.utils.env import setup_environment

    cfg = load_config(args.config_file, args.opts)
    device = resolve_device(cfg.MODEL.DEVICE)
    weights = weights_to_evaluate(cfg, args.ckpt, args.random_weights, flag="--ckpt")
    setup_environment()
    distributed = init_distributed(cfg, args.local_rank)
    try:
        with collective_failures_explained(cfg.DIST_TIMEOUT_MINUTES):
            logger = setup_run(cfg, args, "test_net")
            model = build_detection_model(cfg)
            model.to(device)
            if weights is None:
                logger.warning("--random-weights: evaluating an untrained model")
            else:
                DetectronCheckpointer(cfg, model, logger=logger).load(weights, use_latest=False, match="parameters")
            results = run_test(cfg, model, distributed)
            synchronize()
    finally:
        if distributed:
            torch.distributed.destroy_process_group()
    return results


if __name__ == "__main__":
    main()
