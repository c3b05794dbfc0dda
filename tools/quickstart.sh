#!/usr/bin/env bash
# First run: set up the environment, generate the shapes dataset, train a small detector on the
# CPU (a few minutes on 2 cores), evaluate it (COCO AP), draw its detections on a validation image
# and plot its loss curves. Everything lands in $OUTPUT_DIR (default output/quickstart).
#
#   tools/quickstart.sh                       # defaults below
#   ITERS=1000 OUTPUT_DIR=output/qs2 tools/quickstart.sh
#   SKIP_SETUP=1 tools/quickstart.sh          # environment already set up
#   RESUME=1 tools/quickstart.sh              # continue the run already in $OUTPUT_DIR
set -euo pipefail
cd "$(dirname "$0")/.."

# Measured on 2 shared CPU cores (shapes_val box AP): Faster R-CNN R-18 GN 300 iterations 0.25
# (~4 min); RetinaNet R-18 GN 450 iterations 0.22. Faster R-CNN gets there in fewer iterations.
CONFIG=${CONFIG:-configs/shapes/faster_rcnn_R_18_FPN_shapes.yaml}
ITERS=${ITERS:-300}
OUTPUT_DIR=${OUTPUT_DIR:-output/quickstart}
export MASKRCNN_DATA_DIR=${MASKRCNN_DATA_DIR:-datasets}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
PY=.venv/bin/python

if [ "${SKIP_SETUP:-0}" != "1" ]; then
  bash tools/setup_env.sh
fi

echo "== generating the shapes dataset under $MASKRCNN_DATA_DIR/shapes"
$PY -c "
from maskrcnn_benchmark.config.paths_catalog import DatasetCatalog
for name in ('shapes_train', 'shapes_val'):
    print(name, '->', DatasetCatalog.get(name)['args']['ann_file'])
"

echo "== training $CONFIG for $ITERS iterations (log: $OUTPUT_DIR/log.txt), then evaluating"
# the learning-rate steps scale with the run length
STEP1=$((ITERS * 2 / 3)); STEP2=$((ITERS * 9 / 10))
# an OUTPUT_DIR with checkpoints is refused (not continued); RESUME=1 continues it on purpose
status=0
$PY tools/train_net.py --config-file "$CONFIG" \
  SOLVER.MAX_ITER "$ITERS" SOLVER.STEPS "($STEP1, $STEP2)" SOLVER.WARMUP_ITERS 50 \
  SOLVER.CHECKPOINT_PERIOD "$ITERS" SOLVER.LOG_PERIOD 25 OUTPUT_DIR "$OUTPUT_DIR" ${RESUME:+--resume} \
  2>&1 | { grep --line-buffered -E "iter: |Average Precision|Total training time|Error|error" || true; } || status=$?
[ "$status" -eq 0 ] || { echo "training failed (exit $status): see the message above and $OUTPUT_DIR/log.txt" >&2; exit 1; }

echo "== drawing detections and loss curves"
IMAGE=$(ls "$MASKRCNN_DATA_DIR"/shapes/val/images/* | head -1)
$PY demo/draw_detections.py --config-file "$CONFIG" --weights "$OUTPUT_DIR/model_final.pth" \
  --input "$IMAGE" --output "$OUTPUT_DIR/detections.png" --confidence 0.5 OUTPUT_DIR "$OUTPUT_DIR"
$PY tools/plot_metrics.py "$OUTPUT_DIR/metrics.json" --output "$OUTPUT_DIR/loss_curves.png" >/dev/null

$PY - "$OUTPUT_DIR" <<'PYEOF'
import json, os, sys
out = sys.argv[1]
results = json.load(open(os.path.join(out, "inference", "shapes_val", "metrics.json")))["results"]["bbox"]
print("== shapes_val COCO box AP {:.3f} (AP50 {:.3f}, AP75 {:.3f})".format(results["AP"], results["AP50"], results["AP75"]))
for name in ("detections.png", "loss_curves.png", "model_final.pth", "log.txt"):
    print("   {:<16} {}".format(name, os.path.join(out, name)))
PYEOF
