#!/usr/bin/env bash
# The README's test command: set up the environment, then run the whole CPU test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# the test runner and the optional features (tensorboard, faster-coco-eval, ONNX) on top
REQUIREMENTS=requirements-dev.txt source tools/setup_env.sh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
.venv/bin/python -m pytest -q -ra --durations=15 tests "$@"
