"""Import a Python module from a file path (used for custom environments and path catalogs)."""
import importlib.util
import os
import sys


def import_file(module_name, file_path, make_importable=False):
    """Load ``file_path`` as a module called ``module_name``; with ``make_importable`` it is also
    put into ``sys.modules`` so that later ``import module_name`` statements find it."""
    if not os.path.isfile(file_path):
        raise FileNotFoundError(f"cannot import {module_name!r}: no file at {file_path!r}")
    spec = importlib.util.spec_from_file_location(module_name, file_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if make_importable:
        sys.modules[module_name] = module
    return module
