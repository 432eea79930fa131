#!/usr/bin/env bash
# One more training round of the tracker head, on a borrowed GPU (docs/benchmarks.md, "Tracker round 4
# on a GPU"), for the shipped file and both validation splits' models, in two recipes side by side.
# The training set does not fit one call (64 MiB a call), so it travels in parts, each carried by one
# call while the machine stays warm; each call stages its part and encodes it into the feature cache:
#
#   python scripts/make_small_davis.py $DATA/davis2016-train .devcarry/davis   # then split it by sequence
#   bash scripts/gpu_tracker_round.sh stage .devcarry/dA    # carry .devcarry/{dA,stills,whl}
#   bash scripts/gpu_tracker_round.sh stage .devcarry/dB    # carry .devcarry/dB
#   BUDGET=300 bash scripts/gpu_tracker_round.sh train .devcarry/dC   # carry .devcarry/dC; weights to $OUT
#
# The parts must be alphabetical runs of sequences (dA the first): the cache seeds each sequence's views
# with its index among the sequences present, so staging in order encodes the views one pass would.
# Writes $OUT/tr_<model>_<recipe>.pt (the tracker head alone; merge it with models.training.merge) and
# $OUT/logs.tgz. Runs on a CPU too (DAVIS=... STILLS=... CACHE=... BUDGET=20 STILLS_LIMIT=4).
set -u
MODE=$1; PART=${2:-}
source scripts/device_env.sh
D=${DAVIS:-/tmp/hs_davis}; S=${STILLS:-/tmp/hs_stills}; C=${CACHE:-/tmp/hs_cache}; OUT=${OUT:-runs/gpu_round}
B=${BUDGET:-300}; THREADS=${THREADS:-2}; SEED=${SEED:-3}; MODELS=${MODELS:-"split split2 all"}; RECIPES=${RECIPES:-"a b"}
mkdir -p "$OUT" "$D"
if [ -n "$PART" ]; then cp -r "$PART"/. "$D"/ || exit 1; fi
if [ ! -d "$S" ]; then cp -r .devcarry/stills "$S" || exit 1; fi
T="python3 -m napari_hotspot.train --davis-root $D --stills-root $S --cache $C ${STILLS_LIMIT:+--stills-limit $STILLS_LIMIT}"
# Encode what is staged (sequences and stills already cached are skipped).
t0=$(date +%s)
$T --seed 0 --head egnet --steps-egnet 1 --out /tmp/hs_warm > /tmp/hs_warm.out 2>&1 || { tail -30 /tmp/hs_warm.out; exit 1; }
echo "staged $(ls "$D"/JPEGImages/*/ | wc -l) sequences, cache encoded in $(( $(date +%s) - t0 )) s: $(grep -c encoded /tmp/hs_warm.out) new files"
[ "$MODE" = train ] || exit 0

declare -A VAL=([split]="boat dog-agility hockey mallard-water rollerblade swing"
                [split2]="bear car-turn flamingo lucia paragliding stroller" [all]="")
declare -A INIT=([split]=benchmarks/weights/wcs_lite0_split.pt [split2]=benchmarks/weights/wcs_lite0_split2.pt
                 [all]=src/napari_hotspot/models/weights/wcs_lite0.pt)
# a: round 3's batch at half its learning rate (the rounds so far halved it each time); b: a 3x batch.
# s: a with the slimmer stride-4 decoder block (--tracker-fine-channels 16, that block started afresh).
declare -A RECIPE=([a]="--batch-size 8 --lr 2.5e-4" [b]="--batch-size 24 --lr 5e-4"
                   [s]="--batch-size 8 --lr 2.5e-4 --tracker-fine-channels 16")
rm -f "$OUT"/tr_*.pt "$OUT"/logs.tgz
run() { n=$1_$2
        rm -rf /tmp/hs_r4_$n
        $T --seed "$SEED" --head tracker --steps-tracker 100000 --threads "$THREADS" --time-budget "$B" ${RECIPE[$2]} \
           --init ${INIT[$1]} ${VAL[$1]:+--val-sequences ${VAL[$1]}} --out /tmp/hs_r4_$n > /tmp/hs_r4_$n.out 2>&1
        cp /tmp/hs_r4_$n/weights.pt "$OUT/tr_$n.pt" || { tail -5 /tmp/hs_r4_$n.out | sed "s/^/$n: /"; return 1; }
        grep -h "val mean\|wrote\|budget" /tmp/hs_r4_$n.out | tail -3 | sed "s/^/$n: /"; }
pids=()
for m in $MODELS; do for r in $RECIPES; do run "$m" "$r" & pids+=($!); done; done
fail=0
for p in "${pids[@]}"; do wait "$p" || fail=1; done
tar czf "$OUT/logs.tgz" /tmp/hs_warm.out /tmp/hs_r4_*.out /tmp/hs_r4_*/report.json 2>/dev/null
exit $fail
