#!/usr/bin/env bash
# Build the package CPU-only and run a smoke subset of the tests against several torch releases,
# each in its own fresh virtual environment (outside the repository), and print one line per
# release. The oldest and the newest supported releases by default.
#
#   tools/check_torch_versions.sh                 # torch 2.11.0 and 2.15.0
#   tools/check_torch_versions.sh 2.13.0 2.14.1   # any releases the package index has
#   KEEP=1 tools/check_torch_versions.sh          # keep the venvs and copies for a look afterwards
#
# Each venv takes the torch wheel from the index with its CUDA libraries (several GB on x86-64)
# and the newest torchvision that accepts that torch. Where pip is capped at an older torch
# (a constraints file in pip's configuration), the cap is lifted for these venvs only
# (PIP_CONSTRAINT=/dev/null). Everything lands under $CHECK_DIR (default /tmp/mrcnn-torch-check),
# and is removed afterwards unless KEEP=1. The working tree (committed or not) is copied, so the
# repository's own build and .venv are not touched.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

VERSIONS=("$@")
[ ${#VERSIONS[@]} -gt 0 ] || VERSIONS=(2.11.0 2.15.0)
PYTHON=${PYTHON:-python3}
CHECK_DIR=${CHECK_DIR:-/tmp/mrcnn-torch-check}
export MAX_JOBS=${MAX_JOBS:-2} OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MRCNN_CPU_ONLY=1
export PIP_CONSTRAINT=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1
# The runtime dependencies of pyproject.toml (torch and torchvision apart) and the test runner.
PACKAGES=(numpy yacs pyyaml pycocotools opencv-python-headless pillow tqdm matplotlib pytest ninja)
# Ops and their registrations, the config system, one detector's forward / backward, and the
# distributed wrapping with a 2-process torchrun training (torch 2.13 renamed a DDP keyword).
SMOKE_TESTS=(tests/layers tests/structures/test_structures_boxlist_ops.py tests/config/test_config.py tests/modeling/test_rcnn_models.py tests/utils/test_utils_comm.py
             tests/tools/test_tools.py::test_torchrun_two_cpu_processes_train_checkpoint_and_evaluate)

mkdir -p "$CHECK_DIR"
SUMMARY="$CHECK_DIR/summary.txt"
: > "$SUMMARY"
status=0
for version in "${VERSIONS[@]}"; do
  venv="$CHECK_DIR/venv-$version"
  src="$CHECK_DIR/src-$version"
  log="$CHECK_DIR/torch-$version.log"
  echo "== torch $version: venv $venv, log $log"
  rm -rf "$venv" "$src"
  result=""
  {
    "$PYTHON" -m venv "$venv" &&
    "$venv/bin/python" -m pip install -q --no-cache-dir --upgrade pip "setuptools>=69" wheel &&
    "$venv/bin/python" -m pip install -q --no-cache-dir "torch==$version" torchvision "${PACKAGES[@]}"
  } >"$log" 2>&1 || result="install failed"
  if [ -z "$result" ]; then
    mkdir -p "$src"
    git ls-files -co --exclude-standard -z | tar --null -T - -c | tar -x -C "$src"
    (cd "$src" && "$venv/bin/python" setup.py build_ext --inplace) >>"$log" 2>&1 || result="build failed"
  fi
  if [ -z "$result" ]; then
    versions=$("$venv/bin/python" -c "import torch, torchvision; print(f'torch {torch.__version__}, torchvision {torchvision.__version__}')")
    start=$(date +%s)
    if (cd "$src" && "$venv/bin/python" -m pytest -q -p no:cacheprovider "${SMOKE_TESTS[@]}") >>"$log" 2>&1; then
      result="$versions: CPU build ok, smoke tests $(tail -1 "$log" | tr -d '=' | sed 's/^ *//') ($(( $(date +%s) - start )) s)"
    else
      result="$versions: CPU build ok, smoke tests FAILED: $(tail -1 "$log" | tr -d '=')"
    fi
  fi
  case "$result" in *failed*|*FAILED*) status=1; tail -30 "$log" ;; esac
  echo "torch $version -> $result" | tee -a "$SUMMARY"
  if [ "${KEEP:-0}" != "1" ]; then rm -rf "$venv" "$src"; fi
done
echo "== summary ($SUMMARY)"
cat "$SUMMARY"
exit $status
