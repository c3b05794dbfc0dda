#!/usr/bin/env bash
# First run: set up the environment (CPU kernels only unless MRCNN_CPU_ONLY=0), generate the shapes
# dataset, train a small Faster R-CNN on the CPU (configs/shapes/quickstart_faster_rcnn_R_18_FPN_shapes.yaml,
# the shapes Faster R-CNN tuned to learn fast), evaluate it (COCO AP), draw ground truth beside
# detections for several validation images and plot the training curves. Everything lands in
# $OUTPUT_DIR (default output/quickstart).
#
#   tools/quickstart.sh                       # defaults below
#   ITERS=1000 OUTPUT_DIR=output/qs2 tools/quickstart.sh
#   COMPARE=1 tools/quickstart.sh             # also train the Sampling-Free config; both on one figure
#   SKIP_SETUP=1 tools/quickstart.sh          # environment already set up
#   SKIP_SETUP=1 PY=python3 tools/quickstart.sh   # an environment of your own (its python)
#   SEED=1 tools/quickstart.sh                # another seed (data order, initialisation)
#   RESUME=1 tools/quickstart.sh              # continue the run already in $OUTPUT_DIR
#   MRCNN_CPU_ONLY=0 tools/quickstart.sh      # also build the CUDA kernels when nvcc exists (~1 min more)
set -euo pipefail
cd "$(dirname "$0")/.."

# Measured (shapes_val box AP, one torch thread, current main): 500 iterations (the default)
# 0.568 (seed 0) and 0.624 (SEED=1); 400 iterations 0.449 / 0.468; 600 (two threads) 0.734. The
# general shapes Faster R-CNN (GroupNorm, more proposals and RoIs) reached 0.22-0.26 in 300.
CONFIG=${CONFIG:-configs/shapes/quickstart_faster_rcnn_R_18_FPN_shapes.yaml}
SF_CONFIG=${SF_CONFIG:-configs/shapes/quickstart_faster_rcnn_R_18_FPN_shapes_sampling_free.yaml}
ITERS=${ITERS:-500}
OUTPUT_DIR=${OUTPUT_DIR:-output/quickstart}
SF_OUTPUT_DIR=${SF_OUTPUT_DIR:-${OUTPUT_DIR}_sampling_free}
COMPARE=${COMPARE:-0}
SEED=${SEED:-0}
IMAGES=${IMAGES:-6}          # validation images in the detections picture
CONFIDENCE=${CONFIDENCE:-0.5}  # lowest score drawn
export MASKRCNN_DATA_DIR=${MASKRCNN_DATA_DIR:-datasets}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
PY=${PY:-.venv/bin/python}
# CPU kernels only (the CUDA kernels add ~1 minute to the build), unless asked otherwise or a CUDA build is
# already there (rebuilding CPU-only would drop its kernels)
if [ -z "${MRCNN_CPU_ONLY+set}" ]; then
  if [ -x "$PY" ] && "$PY" -c "import sys, maskrcnn_benchmark.layers as L; sys.exit(not L.compiled_with_cuda())" 2>/dev/null; then
    export MRCNN_CPU_ONLY=0
  else
    export MRCNN_CPU_ONLY=1
  fi
fi

if [ "${SKIP_SETUP:-0}" != "1" ]; then
  bash tools/setup_env.sh
fi

echo "== generating the shapes dataset under $MASKRCNN_DATA_DIR/shapes"
# generating prints nothing on stdout; the two lines are the validation images' folder and annotations
{ read -r VAL_IMAGES; read -r VAL_ANNOTATIONS; } < <($PY -c "
from maskrcnn_benchmark.config.paths_catalog import DatasetCatalog
for name in ('shapes_train', 'shapes_val'):
    args = DatasetCatalog.get(name)['args']
print(args['root']); print(args['ann_file'])
")
[ -f "$VAL_ANNOTATIONS" ] || { echo "quickstart: the shapes dataset was not generated" >&2; exit 1; }

RESUME_FLAG=""
[ "${RESUME:-0}" = "1" ] && RESUME_FLAG=--resume  # RESUME=0 (or unset) never continues a run

train() {  # CONFIG OUTPUT_DIR
  echo "== training $1 for $ITERS iterations (log: $2/log.txt), then evaluating"
  # the learning-rate steps scale with the run length
  local step1=$((ITERS * 2 / 3)) step2=$((ITERS * 9 / 10)) status=0
  # an OUTPUT_DIR with checkpoints is refused (not continued); RESUME=1 continues it on purpose
  $PY tools/train_net.py --config-file "$1" \
    SOLVER.MAX_ITER "$ITERS" SOLVER.STEPS "($step1, $step2)" SOLVER.WARMUP_ITERS 50 \
    SOLVER.CHECKPOINT_PERIOD "$ITERS" SOLVER.LOG_PERIOD 25 SEED "$SEED" OUTPUT_DIR "$2" $RESUME_FLAG \
    2>&1 | { grep --line-buffered -E "iter: |Average Precision|Total training time|Error|error" || true; } || status=$?
  [ "$status" -eq 0 ] || { echo "training failed (exit $status): see the message above and $2/log.txt" >&2; exit 1; }
}

train "$CONFIG" "$OUTPUT_DIR"
RUNS=("$OUTPUT_DIR")
LABELS="baseline"
if [ "$COMPARE" = "1" ]; then
  train "$SF_CONFIG" "$SF_OUTPUT_DIR"
  RUNS+=("$SF_OUTPUT_DIR")
  LABELS="$LABELS,Sampling-Free"
fi

echo "== plotting the training curves"
CURVES="$OUTPUT_DIR/loss_curves.png"
[ "$COMPARE" = "1" ] && CURVES="$OUTPUT_DIR/compare_curves.png"
$PY tools/plot_metrics.py "${RUNS[@]}" --labels "$LABELS" --output "$CURVES"

$PY - "$CONFIDENCE" "${RUNS[@]}" <<'PYEOF'
import json, os, sys
confidence, runs = sys.argv[1], sys.argv[2:]
for out in runs:
    metrics = json.load(open(os.path.join(out, "inference", "shapes_val", "metrics.json")))
    box = metrics["results"]["bbox"]
    print(f"== {out}: shapes_val COCO box AP {box['AP']:.3f} (AP50 {box['AP50']:.3f}, AP75 {box['AP75']:.3f})")
    per_class = metrics["per_class_ap"]["bbox"]
    print("   per class AP: " + ", ".join(f"{name} {'n/a' if ap is None else format(ap, '.3f')}"
                                        for name, ap in per_class.items()))
PYEOF

echo "== drawing ground truth and detections (score >= $CONFIDENCE) for $IMAGES validation images"
mapfile -t PICTURES < <($PY -c "
import json, os, sys
root, ann, count = sys.argv[1:]
for image in json.load(open(ann))['images'][:int(count)]:
    print(os.path.join(root, image['file_name']))
" "$VAL_IMAGES" "$VAL_ANNOTATIONS" "$IMAGES")
# fails (after writing the picture) when an image has no detection at that score
$PY demo/draw_detections.py --config-file "$CONFIG" --weights "$OUTPUT_DIR/model_final.pth" \
  --input "${PICTURES[@]}" --grid --ground-truth "$VAL_ANNOTATIONS" --output "$OUTPUT_DIR/detections.png" \
  --confidence "$CONFIDENCE" OUTPUT_DIR "$OUTPUT_DIR"

for name in detections.png "$(basename "$CURVES")" model_final.pth log.txt; do
  printf "   %-20s %s\n" "$name" "$OUTPUT_DIR/$name"
done
