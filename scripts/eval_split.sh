#!/usr/bin/env bash
# Choose inference rules on the validation split of the training set, never on the 12 test sequences
# (issue 19): the split model of scripts/train_davis.sh (trained on 24 of the 30 davis2016-train
# sequences) scored through `napari-hotspot eval` on the other 6, per prompt, with the defaults and with
# each rule switched off. Two evals run side by side, one thread each.
#   bash scripts/eval_split.sh [DIR]      (DIR default runs/davis_train; writes DIR/split/)
# Each run's rows carry the adaptation guard's verdict (adapt_pass, adapt_rt_iou, base_rt_iou), so the
# *_adapt0 and *_noguard runs give the guard's J at any margin (benchmarks/guard_margin.py).
set -eu
DIR=${1:-runs/davis_train}; OUT=${OUT:-$DIR/split}; mkdir -p "$OUT"
DATA=${NAPARI_HOTSPOT_DATA:-../shared/data}
SEQS=${SEQS:-boat dog-agility hockey mallard-water rollerblade swing}
# The split model: DIR's when it has one (scripts/train_davis.sh), else the committed copy (docs/model_card.md)
[ -f "$DIR/m_split.pt" ] && SPLIT=$DIR/m_split.pt || SPLIT=benchmarks/weights/wcs_lite0_split.pt
WEIGHTS=${WEIGHTS:-$SPLIT}; ROOT=${ROOT:-$DATA/davis2016-train}
RUNS=${RUNS:-"mask_adapt0:mask:--adapt=0 mask_noguard:mask:--no-adapt-guard click_adapt0:click:--adapt=0
  click_noguard:click:--no-adapt-guard box:box auto:auto click_complete0:click:--complete=0 box_complete0:box:--complete=0"}
one() {  # one NAME:INIT[:OPTION[=VALUE]]
  IFS=: read -r name init opt <<< "$1"
  args=(--init "$init"); [ -n "$opt" ] && { args+=("${opt%%=*}"); [[ "$opt" == *=* ]] && args+=("${opt#*=}"); }
  OMP_NUM_THREADS=1 napari-hotspot eval --davis-root "$ROOT" --sequences $SEQS --weights "$WEIGHTS" "${args[@]}" \
    --out "$OUT/$name" > "$OUT/$name.log" 2>&1 || { echo "$name failed:"; tail -5 "$OUT/$name.log"; return 1; }
  echo "$name: $(tail -n 1 "$OUT/$name.log")"
}
set -- $RUNS
while [ $# -gt 0 ]; do
  one "$1" & a=$!; b=
  [ $# -gt 1 ] && { one "$2" & b=$!; }
  wait $a || true; [ -n "$b" ] && { wait $b || true; }
  shift; [ $# -gt 0 ] && shift
done
