#!/usr/bin/env python
"""Evaluate a trained detector on DATASETS.TEST.

    python tools/test_net.py --config-file CONFIG [--ckpt FILE] [KEY VALUE ...]

Without --ckpt the newest checkpoint of OUTPUT_DIR is used (else MODEL.WEIGHT).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from maskrcnn_benchmark.engine.launch import (  # noqa: E402
    init_distributed, load_config, make_parser, run_test, setup_run,
)
from maskrcnn_benchmark.modeling.detector import build_detection_model  # noqa: E402
from maskrcnn_benchmark.utils.checkpoint import DetectronCheckpointer  # noqa: E402
from maskrcnn_benchmark.utils.comm import synchronize  # noqa: E402
from maskrcnn_benchmark.utils.env import setup_environment  # noqa: E402


def main(argv=None):
    parser = make_parser("Evaluate a detector (maskrcnn_benchmark)")
    parser.add_argument("--ckpt", default=None,
                        help="checkpoint to evaluate (default: OUTPUT_DIR's last checkpoint, else MODEL.WEIGHT)")
    args = parser.parse_args(argv)
    cfg = load_config(args.config_file, args.opts)
    setup_environment()
    distributed = init_distributed(cfg, args.local_rank)
    logger = setup_run(cfg, args, "test_net")

    model = build_detection_model(cfg)
    model.to(torch.device(cfg.MODEL.DEVICE))
    checkpointer = DetectronCheckpointer(cfg, model, save_dir=cfg.OUTPUT_DIR, logger=logger)
    weights = cfg.MODEL.WEIGHT if args.ckpt is None else args.ckpt
    checkpointer.load(weights, use_latest=args.ckpt is None)

    results = run_test(cfg, model, distributed)
    synchronize()
    if distributed:
        torch.distributed.destroy_process_group()
    return results


if __name__ == "__main__":
    main()
