"""``MODEL.DEVICE`` to a ``torch.device``: the one place where the key is interpreted.

``"auto"`` (the default) is CUDA when a GPU is usable and the CPU otherwise; ``"cpu"``, ``"cuda"``
and ``"cuda:N"`` ask for that device, and asking for CUDA on a machine without a usable GPU is an
error that names the key, not torch's "no NVIDIA driver" at the first tensor moved.
"""
import torch

AUTO = "auto"


class DeviceError(ValueError):
    """MODEL.DEVICE names a device this machine does not have (or no device at all)."""


def resolve_device(name, key="MODEL.DEVICE"):
    """The ``torch.device`` for the config value ``name`` (see the module docstring)."""
    text = str(name).strip().lower()
    if text == AUTO:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except RuntimeError as err:
        raise DeviceError(f"{key} {name!r} is not a device: use 'auto', 'cpu', 'cuda' or 'cuda:N'") from err
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise DeviceError(f"{key} {name!r}: only 'auto', 'cpu', 'cuda' and 'cuda:N' are supported")
    if not torch.cuda.is_available():
        raise DeviceError(
            f"{key} is {name!r} but no CUDA device is usable here (torch.cuda.is_available() is False; "
            f"torch {torch.__version__}, built for CUDA {torch.version.cuda}): set {key} to 'cpu' or 'auto'"
        )
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise DeviceError(f"{key} {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device
