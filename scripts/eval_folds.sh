#!/usr/bin/env bash
# Three-fold validation of the shipped recipe (docs/benchmarks.md, "Accuracy: three folds"): merges the
# fold models that scripts/gpu_folds.sh wrote into DIR and scores each on its 4 held-out sequences
# through the CLI, mask / click / auto prompts, default adaptation. Fold A takes its EG-Net and tracker
# from the previous shipped weights file (commit 206af5b), trained on the CPU by the same commands.
#   bash scripts/eval_folds.sh [DIR]        # DIR default runs/gpu_folds; writes DIR/m_<fold>.pt, DIR/eval/
set -eu
DIR=${1:-runs/gpu_folds}
mkdir -p "$DIR/eval"
git show 206af5b:src/napari_hotspot/models/weights/wcs_lite0.pt > "$DIR/previous.pt"
merge() { python -m napari_hotspot.models.training.merge --egnet "$1" --gaze2mask "$2" --tracker "$3" --out "$4"; }
merge "$DIR/previous.pt" "$DIR/g2m_A.pt" "$DIR/previous.pt" "$DIR/m_A.pt"
for f in B C; do merge "$DIR/eg_$f.pt" "$DIR/g2m_$f.pt" "$DIR/tr_$f.pt" "$DIR/m_$f.pt"; done
declare -A VAL=([A]="breakdance cows kite-surf parkour" [B]="blackswan dog goat motocross-jump"
                [C]="car-shadow drift-straight horsejump-high scooter-black")
for f in A B C; do
  for init in mask click auto; do
    napari-hotspot eval --sequences ${VAL[$f]} --init $init --weights "$DIR/m_$f.pt" --out "$DIR/eval/${f}_$init" \
      > "$DIR/eval/${f}_$init.log" 2>&1 || { tail -5 "$DIR/eval/${f}_$init.log"; exit 1; }
    echo "fold $f $init: $(tail -n 1 "$DIR/eval/${f}_$init.log")"
  done
done
