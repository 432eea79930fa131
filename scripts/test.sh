#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite headless (napari's canvas needs a GL display: Xvfb).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
unset QT_QPA_PLATFORM
exec xvfb-run -a -s "-screen 0 1600x1000x24" python3 -m pytest -q -p no:cacheprovider "$@"
