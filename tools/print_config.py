#!/usr/bin/env python
"""Print the configuration a run would use: the defaults merged with a yaml (and its _BASE_
chain) and KEY VALUE overrides, as yaml.

    python tools/print_config.py --config-file configs/shapes/faster_rcnn_R_18_FPN_shapes.yaml
    python tools/print_config.py --config-file CONFIG --diff SOLVER.BASE_LR 0.02   # only what differs from the defaults
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import yaml  # noqa: E402
from yacs.config import CfgNode  # noqa: E402

from maskrcnn_benchmark.config import cfg as default_cfg  # noqa: E402
from maskrcnn_benchmark.engine.launch import load_config  # noqa: E402


def as_plain(node):
    """Nested dicts of plain values (tuples as lists, as yaml writes them)."""
    if isinstance(node, CfgNode):
        return {key: as_plain(value) for key, value in node.items()}
    if isinstance(node, (tuple, list)):
        return [as_plain(value) for value in node]
    return node


def differences(config, defaults):
    """The part of ``config`` (nested plain dicts) whose values differ from ``defaults``."""
    changed = {}
    for key, value in config.items():
        default = defaults.get(key)
        if isinstance(value, dict) and isinstance(default, dict):
            below = differences(value, default)
            if below:
                changed[key] = below
        elif key not in defaults or value != default:
            changed[key] = value
    return changed


def render(config_file, opts, diff=False):
    config = as_plain(load_config(config_file, opts))
    if diff:
        config = differences(config, as_plain(default_cfg))
    return yaml.safe_dump(config, default_flow_style=False, sort_keys=True) if config else "{}\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config-file", default="", metavar="FILE", help="yaml config (default: the defaults alone)")
    parser.add_argument("--diff", action="store_true", help="print only the keys whose value differs from the defaults")
    parser.add_argument("opts", nargs=argparse.REMAINDER, default=[], help="overrides KEY VALUE ...")
    args = parser.parse_args(argv)
    text = render(args.config_file, args.opts, diff=args.diff)
    sys.stdout.write(text)
    return text


if __name__ == "__main__":
    main()
