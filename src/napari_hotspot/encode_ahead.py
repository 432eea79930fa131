"""Encode a sweep's next frame on a second thread while the tracker heads run on this one.

A frame's encoding does not depend on the tracking state, so frame t+1 can be decoded and encoded
while the heads track frame t. On a CPU the two threads share the cores: torch's OpenMP thread count
belongs to each thread (`torch.set_num_threads` sets the calling thread's, and the default of threads
made later), and two teams that together outnumber the CPUs spin against each other (`compute.py`).
So the worker runs with half of the sweep thread's count, and the sweep runs its own steps with that
half too (`split_threads`), giving its caller the whole count back between steps: a generator left
suspended (the dock's Cancel) or resumed from another thread changes no thread's count for good.
On 2 cores (one thread each) the heads, made of many small operations, lose less by giving up a core
than the overlap gains: docs/benchmarks.md, "Encoding ahead".
"""

from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Generic, Iterator, TypeVar

import torch

T = TypeVar("T")


def ahead_threads() -> int:
    """Threads for each of the two (the sweep's and the encoder's): half of the calling thread's count,
    or 0 where it has one thread only (then a second thread would only take turns with the first)."""
    n = torch.get_num_threads()
    return n // 2 if n >= 2 else 0


@contextlib.contextmanager
def split_threads(threads: int) -> Iterator[None]:
    """Run the block with `threads` torch threads on this thread, then give it its count back."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class EncodeAhead(Generic[T]):
    """One worker thread, running `threads` torch threads, that runs `encode(frame)` for frames asked
    for ahead of their use.

    `request(frame)` queues a frame (one is computed at a time); `take(frame)` returns its result,
    waiting for it, or None when it was never requested. `drain()` ends it keeping what was encoded;
    `close()` (also on `with` exit) drops what was not taken and waits for the frame being encoded
    (not when called on the worker itself, as a garbage collection there may do)."""

    def __init__(self, encode: Callable[[int], T], threads: int):
        self._encode = encode
        self._pending: dict[int, Future] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="napari-hotspot-encode",
                                        initializer=torch.set_num_threads, initargs=(max(1, threads),))
        self._worker: threading.Thread | None = None
        self._closed = False

    def request(self, frame: int, *args) -> None:
        """Queue `encode(frame, *args)`."""
        if not self._closed and frame not in self._pending:
            self._pending[frame] = self._pool.submit(self._run, frame, *args)

    def _run(self, frame: int, *args) -> T:
        self._worker = threading.current_thread()
        return self._encode(frame, *args)

    def take(self, frame: int) -> T | None:
        fut = self._pending.pop(frame, None)
        return None if fut is None else fut.result()  # the worker's error is raised here, in the sweep

    def drain(self) -> dict[int, T]:
        """Close, keeping what is encoded: the frames done or being encoded now (those still queued are
        dropped; a failed one too, as nobody asked for it yet)."""
        for fut in self._pending.values():
            fut.cancel()  # only a frame not started yet can be cancelled
        kept = {}
        for frame, fut in self._pending.items():
            if not fut.cancelled():
                try:
                    kept[frame] = fut.result()
                except Exception:  # noqa: BLE001 - a frame nobody asked for: its error is not news
                    pass
        self.close()
        return kept

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pending.clear()
        self._pool.shutdown(wait=threading.current_thread() is not self._worker, cancel_futures=True)

    def __enter__(self) -> EncodeAhead[T]:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ThreadBalance:
    """Which thread of a sweep runs the work that can run on either (the anchor templates' correlations):
    the encoding thread while its own work per frame (decoding and encoding) is lighter than the tracking
    thread's own (the steps, without that work), else the tracking thread. A frame costs the slower
    thread's time, and the shared work adds to whichever thread runs it, so it belongs on the lighter one.
    Where the tracker's decoder is the heavier part (a CPU without AMX) that is the encoding thread;
    where the encoder is (AMX, or a slim decoder) the tracking thread. Running means over recent frames;
    the results are the same either way (each thread runs the same operations with the same threads)."""

    SMOOTHING = 0.25  # weight of the newest frame in each running mean

    def __init__(self):
        self.encode_s: float | None = None  # the encoding thread's own seconds per frame
        self.track_s: float | None = None  # the tracking thread's own seconds per frame
        self._since: float | None = None
        self._shared_here = 0.0

    @staticmethod
    def _mean(old: float | None, new: float) -> float:
        return new if old is None else old + ThreadBalance.SMOOTHING * (new - old)

    def ahead(self) -> bool:
        """Whether the next frame's shared work goes to the encoding thread (so until both are measured)."""
        return self.encode_s is None or self.track_s is None or self.encode_s < self.track_s

    def encoded(self, seconds: float) -> None:
        """A frame's decoding and encoding took `seconds` on the encoding thread."""
        self.encode_s = self._mean(self.encode_s, seconds)

    def shared_here(self, seconds: float) -> None:
        """The tracking thread ran `seconds` of the shared work for the current frame."""
        self._shared_here += seconds

    def started(self) -> None:
        """The tracking thread has a frame's features and starts its work on it."""
        self._since, self._shared_here = time.perf_counter(), 0.0

    def skip(self) -> None:
        """This frame is not a tracked one (an anchor's own frame: encoded here, its distractor passes):
        its time says nothing of the frames to come."""
        self._since = None

    def finished(self) -> None:
        """The tracking thread is done with its frame (and will wait for the next one's features)."""
        if self._since is not None:
            own = max(0.0, time.perf_counter() - self._since - self._shared_here)
            if self.track_s is not None:  # a sweep left paused between two frames is not a slow frame
                own = min(own, 3.0 * self.track_s)
            self.track_s = self._mean(self.track_s, own)
            self._since = None
