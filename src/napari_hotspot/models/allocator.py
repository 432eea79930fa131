"""Keep freed memory of up to 32 MB in the process heap instead of handing it back to the kernel.

glibc's malloc gives large freed blocks back to the kernel (blocks over its mmap threshold, and the
heap's free top over its trim threshold); the next frame's activations of the same size then arrive as
fresh pages, and their page faults cost the encoder 2-6 ms a frame, more than the arithmetic they
interrupt (2-CPU Xeon, 256x448, `napari-hotspot track`: 2,700-5,400 minor faults a frame; fixed
thresholds: 0-100). Set once per process where models load; NAPARI_HOTSPOT_MALLOC_TUNING=0 leaves
glibc's defaults. Elsewhere (macOS, Windows, musl) nothing changes.
"""

from __future__ import annotations

import ctypes
import os
import sys

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 << 20  # glibc's own ceiling for its dynamic threshold
TRIM_THRESHOLD_BYTES = 128 << 20  # the most freed memory the heap's top keeps

_STATE: list[bool] = []


def keep_freed_memory() -> bool:
    """Fix glibc's mmap and trim thresholds (once per process); True when they are set."""
    if not _STATE:
        _STATE.append(_set_thresholds())
    return _STATE[0]


def _set_thresholds() -> bool:
    if os.environ.get("NAPARI_HOTSPOT_MALLOC_TUNING", "").lower() in ("0", "false", "no", "off"):
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success; musl's stub returns 0 and changes nothing
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
