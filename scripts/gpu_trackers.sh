#!/usr/bin/env bash
# Tracker-only runs side by side on a borrowed GPU (docs/benchmarks.md, "Tracker: completion
# samples"): for each fold of scripts/gpu_folds.sh (A, B, C; "all" = the 12 sequences) and each
# --completion-rate in RATES, one tracker run on the cached views, stopped at BUDGET seconds.
# Writes $OUT/tr_<fold>_c<rate>[_s<SEED>].pt and logs.tgz. Runs on a CPU too (set BUDGET and STEPS small).
#   OUT=... RATES="0 0.25" FOLDS="A B C all" bash scripts/gpu_trackers.sh
set -u
OUT=${OUT:-runs/gpu_trackers}; mkdir -p "$OUT"
source scripts/device_env.sh
D=${DAVIS:-.devcarry/davis}; B=${BUDGET:-240}; C=${CACHE:-/tmp/hs_cache}; ST=${STEPS:-20000}
RATES=${RATES:-"0 0.25"}; FOLDS=${FOLDS:-"A B C all"}; THREADS=${THREADS:-2}; BS=${BATCH:-8}
declare -A VAL=([A]="breakdance cows kite-surf parkour" [B]="blackswan dog goat motocross-jump"
                [C]="car-shadow drift-straight horsejump-high scooter-black" [all]="")
SEED=${SEED:-0}; T="python3 -m napari_hotspot.train --davis-root $D --cache $C --seed $SEED"
# Encode every sequence's cached views once, before the parallel runs (they would race to write them).
$T --head egnet --steps-egnet 1 --out /tmp/hs_warm > /tmp/hs_warm.out 2>&1 || { cat /tmp/hs_warm.out; exit 1; }
run() { f=$1; r=$2; n=${f}_c$r; [ "$SEED" = 0 ] || n=${n}_s$SEED
        rm -f "$OUT/tr_$n.pt" /tmp/hs_trk_$n/weights.pt  # no stale weights beside a failed run
        $T --head tracker --steps-tracker $ST --batch-size $BS --threads $THREADS --time-budget $B --completion-rate $r \
           ${VAL[$f]:+--val-sequences ${VAL[$f]}} --out /tmp/hs_trk_$n > /tmp/hs_trk_$n.out 2>&1
        cp /tmp/hs_trk_$n/weights.pt "$OUT/tr_$n.pt" || return 1
        grep -h "val mean\|wrote\|step" /tmp/hs_trk_$n.out | tail -3 | sed "s/^/$n: /"; }
pids=()
for f in $FOLDS; do for r in $RATES; do
  run $f $r & pids+=($!)
done; done
fail=0
for p in "${pids[@]}"; do wait "$p" || fail=1; done
tar czf "$OUT/logs.tgz" /tmp/hs_warm.out /tmp/hs_trk_*.out /tmp/hs_trk_*/report.json 2>/dev/null
exit $fail
