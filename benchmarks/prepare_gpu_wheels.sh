#!/usr/bin/env bash
# Download, here, the wheels that benchmarks/run_gpu.sh installs on the lent GPU machine: that
# machine reaches no package index, and its python3 (3.12, torch 2.11, torchvision 0.26; see the
# device tool's KINDS.md) lacks only yacs and pycocotools of this package's runtime dependencies.
# They land in .whl/ (git-ignored), which the device call carries (benchmarks/README.md).
#
#   benchmarks/prepare_gpu_wheels.sh            # then: du -sh .whl (well under the 64 MiB carry limit)
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=${WHEELS:-.whl}
GPU_PYTHON=${GPU_PYTHON:-3.12}
# yacs needs PyYAML, pycocotools needs numpy: both are on that machine already.
PACKAGES=(yacs==0.1.8 pycocotools==2.0.11)
PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64
           manylinux1_x86_64)

rm -rf "$WHEELS"
mkdir -p "$WHEELS"
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version "$GPU_PYTHON" \
  --implementation cp ${PLATFORMS[@]/#/--platform } -d "$WHEELS" "${PACKAGES[@]}"
ls -l "$WHEELS"
du -sh "$WHEELS"
