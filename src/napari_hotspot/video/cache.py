"""A thread-safe LRU cache of decoded frames, bounded by the bytes it holds."""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

# Enough for ~200 frames of 480p RGB: smooth scrubbing in napari without a large footprint.
DEFAULT_CACHE_BYTES = 256 * 2**20


class FrameCache:
    """Least-recently-used map ``frame index -> read-only array`` holding at most ``max_bytes``.

    A frame larger than ``max_bytes`` is never stored (``max_bytes=0`` disables caching).
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES):
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self._frames: OrderedDict[int, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        """Bytes currently held."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._frames)

    def __contains__(self, index: int) -> bool:
        return index in self._frames

    def get(self, index: int) -> np.ndarray | None:
        """The cached frame (read-only) or None; a hit makes it the most recently used."""
        with self._lock:
            frame = self._frames.get(index)
            if frame is not None:
                self._frames.move_to_end(index)
            return frame

    def put(self, index: int, frame: np.ndarray) -> np.ndarray:
        """Store ``frame`` (made read-only, so no caller can alter the cached copy) and return it."""
        frame.setflags(write=False)
        if frame.nbytes > self.max_bytes:
            return frame
        with self._lock:
            old = self._frames.pop(index, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._frames[index] = frame
            self._bytes += frame.nbytes
            while self._bytes > self.max_bytes:
                _, evicted = self._frames.popitem(last=False)
                self._bytes -= evicted.nbytes
        return frame

    def clear(self) -> None:
        with self._lock:
            self._frames.clear()
            self._bytes = 0
