"""The command line the tools share: ``--config-file``, option flags and ``KEY VALUE`` overrides.

Only ``argparse`` is imported here, so that ``--help`` and argument errors answer at once, before
torch is loaded. Flags may come before, between or after the overrides
(``train_net.py --config-file X SOLVER.MAX_ITER 10 --resume``).
"""
import argparse
import os


def make_parser(description):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config-file", default="", metavar="FILE", help="path to the yaml config")
    # torchrun passes the local rank through LOCAL_RANK; torch.distributed.launch used the flag
    parser.add_argument("--local-rank", "--local_rank", dest="local_rank", type=int,
                        default=int(os.environ.get("LOCAL_RANK", 0)), help=argparse.SUPPRESS)
    parser.add_argument("opts", nargs="*", default=[], metavar="KEY VALUE",
                        help="config overrides as KEY VALUE pairs, e.g. SOLVER.MAX_ITER 100")
    return parser


def parse_args(parser, argv=None):
    """``parser``'s arguments from ``argv`` (default: sys.argv), flags and overrides in any order."""
    return parser.parse_intermixed_args(argv)
