#!/usr/bin/env bash
# Every GPU check and figure this project owes, in one command for a machine with a GPU (the
# device tool's `run`, whose exact call is in benchmarks/README.md), using that machine's own
# python3 and torch, with no package index:
#   1. install the carried wheels (.whl/, from benchmarks/prepare_gpu_wheels.sh) into a target dir;
#   2. build maskrcnn_benchmark._C with the CUDA kernels (TORCH_CUDA_ARCH_LIST, default 9.0);
#   3. the CUDA-vs-CPU agreement tests (tests/layers/test_build.py with MRCNN_EXPECT_CUDA=1) and the NMS
#      convention tests;
#   4. the benchmarks: ops vs torchvision, then training step and inference at the paper's
#      Table III setting (800 x 1333, batch 1).
# All output goes to $OUT/log.txt (and the screen); the build log to $OUT/build.log, the
# benchmark numbers to $OUT/train_step.json and $OUT/inference.json. OUT defaults to output/gpu.
#
#   benchmarks/run_gpu.sh                # on the GPU machine
#   benchmarks/run_gpu.sh --cpu-dry-run  # here: the same steps, CPU-only build, tiny CPU benchmarks
set -euo pipefail
cd "$(dirname "$0")/.."

DRY_RUN=0
case "${1:-}" in
  "") ;;
  --cpu-dry-run) DRY_RUN=1 ;;
  *) echo "run_gpu.sh: unknown argument '$1' (only --cpu-dry-run)" >&2; exit 2 ;;
esac
OUT=${OUT:-output/gpu}
mkdir -p "$OUT"
if [ -z "${PY:-}" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
export PYTHONUNBUFFERED=1 PYTHONPATH="$(pwd)${PYTHONPATH:+:$PYTHONPATH}"
step() { echo "== $(date +%T) $*"; }

main() {
  step "python: $("$PY" -c 'import sys, torch; print(sys.executable, sys.version.split()[0], "torch", torch.__version__)')"

  if compgen -G ".whl/*.whl" >/dev/null; then
    SITE=${SITE:-/tmp/mrcnn-site}
    step "installing $(ls .whl | tr '\n' ' ')into $SITE"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
  fi
  "$PY" - <<'EOF'
import importlib.util, sys
missing = [m for m in ("torch", "torchvision", "yacs", "pycocotools", "cv2", "yaml", "matplotlib", "pytest")
           if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"run_gpu.sh: missing python modules {missing}: run benchmarks/prepare_gpu_wheels.sh "
             "here and carry .whl")
EOF

  if [ "$DRY_RUN" = "1" ]; then
    step "building maskrcnn_benchmark._C, CPU kernels only (dry run)"
    export MRCNN_CPU_ONLY=1 MRCNN_EXPECT_CUDA=0
  else
    "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'run_gpu.sh: no CUDA device visible')"
    step "device: $("$PY" -c 'import torch; print(torch.cuda.get_device_name(0), "CUDA", torch.version.cuda)')"
    export FORCE_CUDA=1 MRCNN_EXPECT_CUDA=1 CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
    export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
    step "building maskrcnn_benchmark._C with CUDA kernels for $TORCH_CUDA_ARCH_LIST ($CUDA_HOME)"
  fi
  export MAX_JOBS=${MAX_JOBS:-$(nproc)}
  if ! "$PY" setup.py build_ext --inplace >"$OUT/build.log" 2>&1; then
    tail -40 "$OUT/build.log"
    echo "run_gpu.sh: the build failed, see $OUT/build.log" >&2
    exit 1
  fi
  "$PY" -c "import maskrcnn_benchmark.layers as L; print('compiled_with_cuda:', L.compiled_with_cuda())"

  step "CUDA-vs-CPU agreement and NMS convention tests"
  "$PY" -m pytest -q -ra -p no:cacheprovider tests/layers/test_build.py tests/layers/test_nms_conventions.py

  if [ "$DRY_RUN" = "1" ]; then
    DEVICE=cpu; SIZE=(--device cpu --image-size 64 --batch 1 --iters 1 --warmup 0 --models retinanet)
    OPS=(--device cpu --repeats 1)
  else
    DEVICE=cuda; SIZE=(--device cuda --image-size 800 --image-width 1333 --batch 1 --iters 20 --warmup 5)
    OPS=(--device cuda)
  fi
  step "ops vs torchvision ($DEVICE)"
  "$PY" benchmarks/ops.py "${OPS[@]}"
  step "training step ($DEVICE)"
  "$PY" benchmarks/train_step.py "${SIZE[@]}" --json "$OUT/train_step.json"
  step "inference ($DEVICE)"
  "$PY" benchmarks/inference.py "${SIZE[@]}" --json "$OUT/inference.json"
  step "done: $OUT"
}

main 2>&1 | tee "$OUT/log.txt"
