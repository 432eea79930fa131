#!/usr/bin/env bash
# One-step set-up on a fresh Debian/Ubuntu machine (or any machine with Python >= 3.10 and pip):
# system libraries for headless napari (Xvfb + Mesa OpenGL + xcb), then the package with its
# test extras. Idempotent: fast when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(xvfb xauth libgl1-mesa-dri libglx-mesa0 libegl1 libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0
  libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-xinerama0 libxcb-xinput0 libxcb-xfixes0
  libxcb-shape0 libxcb-cursor0 libdbus-1-3 libfontconfig1)

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
fi
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
  echo "installing system packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
# The CPU build of torch first, pinned: an unpinned torch (and on PyPI even a pinned one, on Linux
# x86-64) pulls a multi-GB CUDA build. A local CPU wheel (pip's --find-links folder) is used as it is;
# elsewhere PyTorch's own CPU index gives the CPU build (TORCH_INDEX= with nothing after it: plain PyPI).
TORCH_INDEX=${TORCH_INDEX-https://download.pytorch.org/whl/cpu}
if ! "$PY" -c "import torch" 2>/dev/null; then
  if ls "${PIP_FIND_LINKS:-/nonexistent}"/torch-2.13.0+cpu-*.whl >/dev/null 2>&1 || [ -z "$TORCH_INDEX" ]; then
    "$PY" -m pip install -q torch==2.13.0
  else
    "$PY" -m pip install -q torch==2.13.0 --index-url "$TORCH_INDEX"
  fi
fi
"$PY" -m pip install -q -e ".[test]"
# Qt6 (PyQt6, from napari[pyqt6]) in place of PyQt5: qtpy prefers PyQt5 whenever it is installed, so a
# machine set up before the switch drops it (napari 0.9 deprecates it; every GUI test passes on PyQt6).
if "$PY" -c "import PyQt6.QtCore" 2>/dev/null && "$PY" -m pip show -q PyQt5 >/dev/null 2>&1; then
  echo "replacing PyQt5 by PyQt6"
  "$PY" -m pip uninstall -q -y PyQt5 PyQt5-Qt5 PyQt5_sip
fi
