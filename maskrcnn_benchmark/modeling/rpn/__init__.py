"""Region proposal network and the one-stage heads that share its interface."""
from .rpn import build_rpn

__all__ = ["build_rpn"]
