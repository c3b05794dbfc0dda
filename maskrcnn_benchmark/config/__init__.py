"""The global configuration ``cfg`` (yacs), with errors that name the offending file and key.

A yaml file may start with ``_BASE_: other.yaml`` (a path relative to the file): the base is merged
first, then the file's own values. Ablation configs use this to state only what they change.
"""
import os

import yaml
from yacs.config import CfgNode

BASE_KEY = "_BASE_"

from .defaults import _C


class ConfigError(KeyError):
    """A config file or override names a key that does not exist or gives it a value of the wrong type."""

    def __str__(self):  # KeyError would quote the message; keep it readable
        return str(self.args[0])


class DetectionConfig(CfgNode):
    """A CfgNode whose merge errors say which file (or command-line override) caused them."""

    def merge_from_file(self, cfg_filename, _chain=()):
        if not os.path.isfile(cfg_filename):
            raise FileNotFoundError(f"config file not found: {cfg_filename}")
        with open(cfg_filename) as handle:
            content = yaml.safe_load(handle) or {}
        base = content.pop(BASE_KEY, None)
        if base is not None:
            base_path = os.path.normpath(os.path.join(os.path.dirname(cfg_filename), base))
            if base_path in _chain:
                raise ConfigError(f"{cfg_filename}: {BASE_KEY} cycle through {base_path}")
            self.merge_from_file(base_path, _chain + (os.path.normpath(cfg_filename),))
        try:
            self.merge_from_other_cfg(CfgNode(content))
        except (KeyError, ValueError, AssertionError) as err:
            raise ConfigError(f"{cfg_filename}: {_describe(err)}") from err

    def merge_from_list(self, cfg_list):
        try:
            super().merge_from_list(cfg_list)
        except (KeyError, ValueError, AssertionError) as err:
            raise ConfigError(f"command-line override {list(cfg_list)}: {_describe(err)}") from err


def _describe(err):
    return err.args[0] if err.args else repr(err)


def _as_detection_config(node):
    """Rebuild a CfgNode tree with DetectionConfig at every level."""
    converted = DetectionConfig(new_allowed=node.is_new_allowed())
    for key, value in node.items():
        converted[key] = _as_detection_config(value) if isinstance(value, CfgNode) else value
    return converted


cfg = _as_detection_config(_C)

__all__ = ["cfg", "ConfigError", "DetectionConfig"]
