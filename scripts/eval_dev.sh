#!/usr/bin/env bash
# Score a model on the 12 davis2016-dev sequences, the test set (look at it rarely): through
# `napari-hotspot eval` with the default settings for each prompt, plus --adapt 0 for the mask and the
# click (what the default adaptation and its guard earn). Weights default to the shipped file, which
# trained on davis2016-train + DUTS only.
#   bash scripts/eval_dev.sh [OUT]        (default runs/davis_train/dev)
set -eu
DATA=${NAPARI_HOTSPOT_DATA:-../shared/data}
OUT=${1:-runs/davis_train/dev} ROOT=$DATA/davis2016-dev \
SEQS="blackswan breakdance car-shadow cows dog drift-straight goat horsejump-high kite-surf motocross-jump parkour scooter-black" \
WEIGHTS=${WEIGHTS:-src/napari_hotspot/models/weights/wcs_lite0.pt} \
RUNS=${RUNS:-"mask:mask click:click box:box auto:auto mask_adapt0:mask:--adapt=0 click_adapt0:click:--adapt=0"} \
  bash "$(dirname "$0")/eval_split.sh"
