"""MODEL.DEVICE: "auto" picks CUDA when there is one and the CPU otherwise; asking for CUDA where
there is none is an error naming the key; every reader of the key goes through resolve_device."""
import glob
import os
import re

import pytest
import torch

from maskrcnn_benchmark.config import cfg
from maskrcnn_benchmark.utils.device import DeviceError, resolve_device

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def two_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


def test_default_is_auto_and_auto_follows_the_machine(no_cuda):
    assert cfg.MODEL["DEVICE"] == "auto"  # the default
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(" AUTO ") == torch.device("cpu")


def test_auto_picks_cuda_when_available(two_gpus):
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)


def test_cuda_without_a_gpu_is_an_error_naming_the_key(no_cuda):
    with pytest.raises(DeviceError, match=r"MODEL.DEVICE is 'cuda' but no CUDA device is usable.*'cpu' or 'auto'"):
        resolve_device("cuda")
    assert resolve_device("cpu") == torch.device("cpu")


def test_unknown_devices_are_named(two_gpus):
    with pytest.raises(DeviceError, match=r"MODEL.DEVICE 'gpu' is not a device"):
        resolve_device("gpu")
    with pytest.raises(DeviceError, match=r"MODEL.DEVICE 'meta': only"):
        resolve_device("meta")
    with pytest.raises(DeviceError, match=r"'cuda:2': this machine has 2 CUDA device"):
        resolve_device("cuda:2")


# a read of the key: not an assignment, not inside resolve_device(...)
_READ = re.compile(r"(?<!resolve_device\()\b\w+\.MODEL\.DEVICE\b(?!\s*=[^=])")


def test_every_reader_of_model_device_resolves_it():
    offenders = []
    for folder in ("maskrcnn_benchmark", "tools", "demo", "benchmarks", "tests"):
        for path in glob.glob(os.path.join(ROOT, folder, "**", "*.py"), recursive=True):
            with open(path) as handle:
                for number, line in enumerate(handle, 1):
                    if _READ.search(line):
                        offenders.append(f"{os.path.relpath(path, ROOT)}:{number}: {line.strip()}")
    assert offenders == []
