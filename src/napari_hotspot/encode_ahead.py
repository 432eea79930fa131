"""Encode a sweep's next frame on a second thread while the tracker heads run on this one.

A frame's encoding does not depend on the tracking state, so frame t+1 can be decoded and encoded
while the heads track frame t. On a CPU the two threads share the cores: the torch thread pool is
process-wide (`torch.set_num_threads` set on one thread holds for all), so while any sweep encodes
ahead it is halved, and the last sweep to finish restores it. On 2 cores (one thread each) the
heads, made of many small operations, lose less by giving up a core than the overlap gains:
docs/benchmarks.md, "Encoding ahead".
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Generic, TypeVar

import torch

T = TypeVar("T")

_threads_lock = threading.Lock()
_threads_users = 0
_threads_before = 0


def _split_threads() -> None:
    """Halve torch's thread pool for the first user; later users find it halved already."""
    global _threads_users, _threads_before
    with _threads_lock:
        if _threads_users == 0:
            _threads_before = torch.get_num_threads()
            torch.set_num_threads(max(1, _threads_before // 2))
        _threads_users += 1


def _restore_threads() -> None:
    global _threads_users
    with _threads_lock:
        _threads_users -= 1
        if _threads_users == 0:
            torch.set_num_threads(_threads_before)


def worth_encoding_ahead() -> bool:
    """A second thread pays only where there are at least two torch threads to share between them."""
    with _threads_lock:
        return _threads_users > 0 or torch.get_num_threads() >= 2


class EncodeAhead(Generic[T]):
    """One worker thread that runs `encode(frame)` for frames asked for ahead of their use.

    `request(frame)` queues a frame (at most one is computed at a time); `take(frame)` returns its
    result, waiting for it, or None when it was never requested. `close()` (also on `with` exit)
    drops what was not taken, waits for the frame being encoded, and gives the threads back."""

    def __init__(self, encode: Callable[[int], T]):
        self._encode = encode
        self._pending: dict[int, Future] = {}
        _split_threads()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="napari-hotspot-encode")
        self._closed = False

    def request(self, frame: int) -> None:
        if not self._closed and frame not in self._pending:
            self._pending[frame] = self._pool.submit(self._encode, frame)

    def take(self, frame: int) -> T | None:
        fut = self._pending.pop(frame, None)
        return None if fut is None else fut.result()  # the worker's error is raised here, in the sweep

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pending.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)
        _restore_threads()

    def __enter__(self) -> EncodeAhead[T]:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
