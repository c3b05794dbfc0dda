#!/usr/bin/env bash
# Create .venv, install the pinned requirements ($REQUIREMENTS, default requirements.txt: the runtime
# ones; tools/run_tests.sh asks for requirements-dev.txt) and build maskrcnn_benchmark._C in place.
# Idempotent: an existing environment is reused and only what changed is rebuilt.
# CUDA kernels are compiled when CUDA is usable or FORCE_CUDA=1 (set automatically when nvcc exists
# and MRCNN_CPU_ONLY is not 1); TORCH_CUDA_ARCH_LIST defaults to one architecture to keep it short.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
# Some machines' pip configuration names index folders that lack most packages: pip then warns
# once per package and folder, even with --quiet (44 lines here). Its errors still show.
.venv/bin/python -m pip install --quiet -r "${REQUIREMENTS:-requirements.txt}" 2>&1 |
  { grep -v "^WARNING: Location '.*' is ignored: it is neither a file nor a directory" || true; }

CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
if [ "${MRCNN_CPU_ONLY:-0}" != "1" ] && [ -x "$CUDA_HOME/bin/nvcc" ]; then
  export CUDA_HOME FORCE_CUDA=${FORCE_CUDA:-1}
  export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
  export MRCNN_EXPECT_CUDA=1
  echo "setup_env: building with CUDA kernels (CUDA_HOME=$CUDA_HOME, arch $TORCH_CUDA_ARCH_LIST)"
else
  echo "setup_env: building CPU kernels only"
fi
export MAX_JOBS=${MAX_JOBS:-2}
.venv/bin/python setup.py build_ext --inplace >/tmp/mrcnn_build.log 2>&1 || { tail -50 /tmp/mrcnn_build.log; exit 1; }
.venv/bin/python -c "import torch, maskrcnn_benchmark._C; print('setup_env: maskrcnn_benchmark._C built')"
