"""The compiled operators of maskrcnn_benchmark (maskrcnn_benchmark._C); the package's metadata and
dependencies are in pyproject.toml.

The CPU kernels are always built. The CUDA kernels are added when torch sees a GPU or when
FORCE_CUDA=1 (for building on a machine without one), unless MRCNN_CPU_ONLY=1;
TORCH_CUDA_ARCH_LIST picks the GPU architectures as usual.
"""
import glob
import importlib.util
import os

import torch
from setuptools import setup
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension

ROOT = os.path.dirname(os.path.abspath(__file__))
CSRC = os.path.join(ROOT, "csrc")


def wants_cuda():
    if os.environ.get("MRCNN_CPU_ONLY", "0") == "1":
        return False
    return torch.cuda.is_available() or os.environ.get("FORCE_CUDA", "0") == "1"


def cuda_home():
    home = CUDA_HOME or os.environ.get("CUDA_HOME") or "/usr/local/cuda"
    if not os.path.exists(os.path.join(home, "bin", "nvcc")):
        raise RuntimeError(
            f"CUDA build requested but nvcc was not found under CUDA_HOME={home!r}; "
            "set CUDA_HOME to your CUDA toolkit or unset FORCE_CUDA for a CPU-only build"
        )
    return home


def pip_cuda_include_dirs():
    """Header folders of the pip-installed CUDA libraries (the nvidia/* wheels torch depends on).

    Some toolkits (for example a trimmed CUDA image) lack library headers such as cusparse.h that
    torch's CUDA headers include; the wheels ship them.
    """
    spec = importlib.util.find_spec("nvidia")
    if spec is None or not spec.submodule_search_locations:
        return []
    found = []
    for base in spec.submodule_search_locations:
        for include in sorted(glob.glob(os.path.join(base, "*", "include"))):
            if os.path.exists(os.path.join(include, "cusparse.h")):
                found.append(include)
    return found


def source_files(pattern):
    # relative paths: setuptools refuses absolute ones when it builds a wheel
    return sorted(os.path.relpath(path) for path in glob.glob(os.path.join(CSRC, pattern)))


def make_extension():
    sources = source_files("registration.cpp") + source_files(os.path.join("cpu", "*.cpp"))
    # -g0 overrides the -g of Python's own CFLAGS: debug info for the torch headers made each
    # object ~40x larger and its compile ~1.5x slower
    extra_compile_args = {"cxx": ["-O3", "-g0"]}
    define_macros = []
    include_dirs = [CSRC]

    if not wants_cuda():
        return CppExtension(
            "maskrcnn_benchmark._C",
            sources,
            include_dirs=include_dirs,
            define_macros=define_macros,
            extra_compile_args=extra_compile_args,
        )

    home = cuda_home()
    sources += source_files(os.path.join("cuda", "*.cu"))
    define_macros.append(("WITH_CUDA", None))
    if not os.path.exists(os.path.join(home, "include", "cusparse.h")):
        include_dirs += pip_cuda_include_dirs()
    extra_compile_args["nvcc"] = ["-O3", "--expt-relaxed-constexpr"]
    return CUDAExtension(
        "maskrcnn_benchmark._C",
        sources,
        include_dirs=include_dirs,
        define_macros=define_macros,
        extra_compile_args=extra_compile_args,
    )


setup(
    ext_modules=[make_extension()],
    cmdclass={"build_ext": BuildExtension},
    zip_safe=False,
)
