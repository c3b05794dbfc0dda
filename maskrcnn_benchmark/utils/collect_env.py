"""A text report of the software environment, logged at the start of every run."""
import importlib

from torch.utils.collect_env import get_pretty_env_info


def get_pil_version():
    import PIL

    return f"\n        Pillow ({PIL.__version__})"


def _library_versions():
    lines = []
    for module_name in ("torchvision", "cv2", "pycocotools", "yacs"):
        try:
            module = importlib.import_module(module_name)
            version = getattr(module, "__version__", "installed")
        except ImportError:
            version = "not installed"
        lines.append(f"{module_name}: {version}")
    try:
        importlib.import_module("maskrcnn_benchmark._C")
        lines.append("maskrcnn_benchmark._C: built")
    except ImportError as err:
        lines.append(f"maskrcnn_benchmark._C: not available ({err})")
    return "\n".join(lines)


def collect_env_info():
    """PyTorch's environment report, plus Pillow, the other libraries and the compiled ops."""
    return get_pretty_env_info() + get_pil_version() + "\n" + _library_versions()
