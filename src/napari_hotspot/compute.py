"""One thread for all of a process's model work, and the session lock that sends work to it.

Why: PyTorch's CPU wheels run their ops on GNU OpenMP, which gives every thread that runs a parallel op
its own team of worker threads. Once a process holds more such threads than it has CPUs (the GUI thread's
team plus a worker thread's, on any machine), every team spins only about a hundred times before it
sleeps between two ops, and the networks' many small ops run up to twice as slowly: on the 2-CPU Xeon
the encoder took 15 ms in the main thread and 28 ms in a second thread (docs/benchmarks.md, "GUI
speed through the dock", sixteenth session). So the dock sends every model call to this one thread,
wherever it comes from (a click on the GUI thread, a tracking or encoding job on a worker thread), and
waits for it there. A sweep (`HotspotSession.propagate`) stepped here encodes its next frames on a
thread of its own; each of its steps runs with half this thread's torch threads and the encoding
thread with the other half, so the two teams together fit the CPUs (`encode_ahead.py`).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class ComputeThread:
    """A long-lived daemon thread that runs the functions given to ``run`` one at a time, in order."""

    def __init__(self, name: str = "napari-hotspot-compute"):
        self._name = name
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    def in_thread(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` on this thread; blocks until it returns, and returns its result or
        raises its exception. Called from this thread itself, it runs ``fn`` at once (no deadlock)."""
        if self.in_thread():
            return fn(*args, **kwargs)
        self._ensure_started()
        future: Future = Future()
        self._queue.put((future, fn, args, kwargs))
        return future.result()

    def _ensure_started(self) -> None:
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            future, fn, args, kwargs = self._queue.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args, **kwargs)
            except BaseException as err:  # noqa: BLE001 - handed to the caller, which raises it
                future.set_exception(err)
            else:
                future.set_result(result)
            del future, fn, args, kwargs  # drop references to the job's data before waiting again


_COMPUTE = ComputeThread()


def compute_thread() -> ComputeThread:
    """The process's one model thread (shared by every dock and session)."""
    return _COMPUTE


class SessionLock:
    """The lock of a session that several threads use, whose ``run`` does the work on the model thread.

    ``with lock:`` guards a few lines on the calling thread, as a ``threading.Lock`` does (for what runs
    no network). ``lock.run(fn, ...)`` takes the lock, runs ``fn`` on ``compute_thread()`` and returns
    its result: model work from any thread ends up on one thread. The lock is taken by the caller, not
    by the model thread, so ``fn`` may itself call ``run`` (it runs at once).
    """

    def __init__(self, compute: ComputeThread | None = None):
        self._lock = threading.Lock()
        self.compute = compute or _COMPUTE

    def __enter__(self) -> "SessionLock":
        self._lock.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self._lock.release()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self.compute.in_thread():
            if self._lock.acquire(blocking=False):  # sent here by other code: hold this lock too
                try:
                    return fn(*args, **kwargs)
                finally:
                    self._lock.release()
            return fn(*args, **kwargs)  # inside this lock's own run: its caller holds it
        with self._lock:
            return self.compute.run(fn, *args, **kwargs)


def locked_call(lock, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` holding ``lock``: through ``lock.run`` (on the model thread) for a
    ``SessionLock``, on this thread for any other lock or context (a plain lock in tests, none)."""
    run = getattr(lock, "run", None)
    if run is not None:
        return run(fn, *args, **kwargs)
    with lock:
        return fn(*args, **kwargs)


class OnModelThread:
    """A session whose method calls run on the model thread (``compute_thread().run``), for Qt-free
    helpers that call the session and also write an annotation store: the store (and the widgets that
    listen to it) stays on the calling thread, only the model work moves."""

    def __init__(self, session, compute: ComputeThread | None = None):
        self._session = session
        self._compute = compute or _COMPUTE

    def __getattr__(self, name: str):
        value = getattr(self._session, name)
        if not callable(value):
            return value

        def on_model_thread(*args, **kwargs):
            return self._compute.run(value, *args, **kwargs)

        return on_model_thread
