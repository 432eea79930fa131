#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite headless (napari's canvas needs a GL display: Xvfb).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
unset QT_QPA_PLATFORM
# Two test processes (pytest-xdist; an idle one takes tests from the busy one), one torch thread each:
# the GUI and subprocess tests are mostly single-threaded Python, so two of them at once use both cores
# (2-core machine: 1081 s in one process, 505 s in two). `OMP_NUM_THREADS=2 bash scripts/test.sh -n 0`: one.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec xvfb-run -a -s "-screen 0 1600x1000x24" python3 -m pytest -q -p no:cacheprovider -p no:benchmark \
  -n 2 --dist worksteal "$@"
