"""Installing the package: its metadata (runtime dependencies, what lands in site-packages) and a
real `pip install --target` whose result imports and runs from outside the checkout."""
import os
import shutil
import subprocess
import sys

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# What the build reads; nothing else of the checkout (build/, .venv, datasets) is copied.
BUILD_INPUTS = ("pyproject.toml", "setup.py", "README.md", "csrc", "maskrcnn_benchmark")
RUNTIME_IMPORTS = {"torch", "torchvision", "numpy", "yacs", "pyyaml", "pycocotools",
                   "opencv-python-headless", "pillow", "tqdm", "matplotlib"}


def copy_build_inputs(destination):
    ignore = shutil.ignore_patterns("*.so", "__pycache__", "*.egg-info")
    os.makedirs(destination, exist_ok=True)
    for name in BUILD_INPUTS:
        source = os.path.join(ROOT, name)
        if os.path.isdir(source):
            shutil.copytree(source, os.path.join(destination, name), ignore=ignore)
        else:
            shutil.copy2(source, destination)
    return destination


def cpu_only_env():
    return {**os.environ, "MRCNN_CPU_ONLY": "1", "MAX_JOBS": os.environ.get("MAX_JOBS", "2")}


def read_metadata(folder):
    """Requires-Dist requirements and the top-level names of the dist-info built in ``folder``."""
    (dist_info,) = [name for name in os.listdir(folder) if name.endswith(".dist-info")]
    with open(os.path.join(folder, dist_info, "METADATA")) as handle:
        lines = handle.read().splitlines()
    requirements = [Requirement(line.split(":", 1)[1].strip()) for line in lines if line.startswith("Requires-Dist:")]
    top_level_path = os.path.join(folder, dist_info, "top_level.txt")
    top_level = open(top_level_path).read().split() if os.path.exists(top_level_path) else None
    python = [line.split(":", 1)[1].strip() for line in lines if line.startswith("Requires-Python:")]
    return requirements, top_level, python


@pytest.fixture(scope="module")
def metadata(tmp_path_factory):
    """The wheel metadata setuptools prepares (no compilation)."""
    source = copy_build_inputs(str(tmp_path_factory.mktemp("source")))
    out = str(tmp_path_factory.mktemp("metadata"))
    code = f"from setuptools import build_meta; build_meta.prepare_metadata_for_build_wheel({out!r})"
    done = subprocess.run([sys.executable, "-c", code], cwd=source, env=cpu_only_env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return read_metadata(out)


def test_runtime_dependencies_have_the_supported_lower_bounds(metadata):
    requirements, _, python = metadata
    runtime = {r.name.lower(): r for r in requirements if r.marker is None}
    assert set(runtime) == RUNTIME_IMPORTS
    assert str(runtime["torch"].specifier) == ">=2.11"  # the oldest torch checked (INSTALL.md)
    assert str(runtime["torchvision"].specifier) == ">=0.26"  # torchvision of torch 2.11
    assert all(str(r.specifier).startswith(">=") for r in runtime.values()), runtime
    assert python == [">=3.10"]
    extras = {r.name for r in requirements if r.marker is not None}
    assert extras == {"tensorboard", "pytest", "onnx", "onnxscript", "onnxruntime"}


def read_pins(name):
    """The requirements of ``name`` (a file at the root), following its ``-r`` includes."""
    pins = []
    with open(os.path.join(ROOT, name)) as handle:
        for line in handle:
            line = line.split("#")[0].strip()
            if line.startswith("-r "):
                pins += read_pins(line[3:].strip())
            elif line:
                pins.append(Requirement(line))
    return pins


def test_ci_pins_satisfy_the_declared_ranges(metadata):
    requirements, _, _ = metadata
    declared = {r.name.lower(): r for r in requirements}
    runtime = {p.name.lower() for p in read_pins("requirements.txt")}
    everything = read_pins("requirements-dev.txt")
    for pin in everything:
        if pin.name.lower() in declared and str(pin.specifier).startswith("=="):
            version = Version(str(pin.specifier)[2:])
            assert declared[pin.name.lower()].specifier.contains(version), (pin, declared[pin.name.lower()])
    # the quickstart's install (requirements.txt) is the runtime alone; the suite's adds every extra
    assert runtime >= set(RUNTIME_IMPORTS) - {"pyyaml", "numpy", "pillow"}
    extras = {r.name.lower() for r in requirements if r.marker is not None}
    assert not runtime & extras, runtime & extras
    assert {p.name.lower() for p in everything} >= runtime | extras


def test_only_the_library_is_a_top_level_package(metadata):
    _, top_level, _ = metadata
    assert top_level == ["maskrcnn_benchmark"]  # no demo, tools, tests, benchmarks, configs


@pytest.mark.slow
def test_pip_install_target_imports_and_runs_outside_the_checkout(tmp_path):
    # Compiles the CPU kernels (a few minutes on two cores).
    source = copy_build_inputs(str(tmp_path / "source"))
    target = str(tmp_path / "site")
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
                           "--no-cache-dir", "--target", target, "."],
                          cwd=source, env=cpu_only_env(), capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert sorted(n for n in os.listdir(target) if not n.endswith(".dist-info")) == ["maskrcnn_benchmark"]
    assert any(n.startswith("_C") and n.endswith(".so") for n in os.listdir(os.path.join(target, "maskrcnn_benchmark")))
    _, top_level, _ = read_metadata(target)
    assert top_level == ["maskrcnn_benchmark"]

    code = (
        "import torch, maskrcnn_benchmark, maskrcnn_benchmark.layers as L\n"
        "from maskrcnn_benchmark.config import cfg\n"
        f"assert maskrcnn_benchmark.__file__.startswith({target!r}), maskrcnn_benchmark.__file__\n"
        "assert not L.compiled_with_cuda()\n"
        "boxes = torch.tensor([[0., 0., 10., 10.], [0., 0., 10., 5.], [30., 30., 40., 40.]])\n"
        "scores = torch.tensor([0.9, 0.8, 0.7])\n"
        "print(L.nms(boxes, scores, 0.5).tolist(), L.nms(boxes, scores, 0.5, legacy=True).tolist())\n"
        "import importlib.util as u; print([n for n in ('demo', 'tools', 'tests') if u.find_spec(n)])\n"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=str(tmp_path), capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": target}, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.split("\n")[:2] == ["[0, 1, 2] [0, 2]", "[]"]

