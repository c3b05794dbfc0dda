#!/usr/bin/env bash
# Every GPU check and figure this project still owes, in one command for a session that has a
# device (e.g. the device tool's `run`): the CUDA-vs-CPU kernel agreement test, then the
# benchmarks at the paper's Table III setting (800 x 1333, batch 1). Results go to $OUT (or
# output/gpu) as JSON and printed markdown tables.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-output/gpu}
mkdir -p "$OUT"
PY=${PY:-.venv/bin/python}

"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'run_gpu.sh: no CUDA device visible')"
"$PY" -c "import torch; print(torch.cuda.get_device_name(0))" | tee "$OUT/device.txt"

MRCNN_EXPECT_CUDA=1 "$PY" -m pytest -q -ra tests/test_build.py 2>&1 | tee "$OUT/tests.txt"

SIZE="--device cuda --image-size 800 --image-width 1333 --batch 1 --iters 20 --warmup 5"
"$PY" benchmarks/ops.py --device cuda 2>&1 | tee "$OUT/ops.txt"
"$PY" benchmarks/train_step.py $SIZE --json "$OUT/train_step.json" 2>&1 | tee "$OUT/train_step.txt"
"$PY" benchmarks/inference.py $SIZE --json "$OUT/inference.json" 2>&1 | tee "$OUT/inference.txt"
