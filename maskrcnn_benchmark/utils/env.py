"""Environment set-up hook run at the start of the tools.

Pointing the environment variable ``TORCH_DETECTRON_ENV_MODULE`` at a Python file (or an
importable module name) makes ``setup_environment`` import it and call its ``setup_environment()``,
so a site can adjust paths, threads or logging without editing the code.
"""
import importlib
import os

from maskrcnn_benchmark.utils.imports import import_file

ENV_MODULE_VARIABLE = "TORCH_DETECTRON_ENV_MODULE"


def setup_environment():
    custom_module_path = os.environ.get(ENV_MODULE_VARIABLE)
    if custom_module_path:
        setup_custom_environment(custom_module_path)


def setup_custom_environment(custom_module_path):
    """Import the module (a ``.py`` path or a dotted module name) and call its setup_environment()."""
    if custom_module_path.endswith(".py"):
        module = import_file("maskrcnn_benchmark.utils.env.custom_module", custom_module_path)
    else:
        module = importlib.import_module(custom_module_path)
    if not callable(getattr(module, "setup_environment", None)):
        raise AttributeError(
            f"custom environment module {custom_module_path!r} (from ${ENV_MODULE_VARIABLE}) "
            "must define a function setup_environment()"
        )
    module.setup_environment()
