"""Background jobs of the hotspot widget: propagation, per-video adaptation, frame encoding, gaze prompts,
in napari thread workers.

The job bodies are plain generator functions (no Qt; they can be iterated directly in tests);
``start_*`` wrap them in napari's ``create_worker`` so they run in a thread, report through
napari's progress bar and can be cancelled with ``worker.quit()``. The session is not thread-safe:
every call into it holds ``lock`` for one step only, so the main thread never waits long for it, and
runs that step on the process's one model thread (``compute.SessionLock.run``: model work spread over
several threads runs up to twice as slowly).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_hotspot.compute import locked_call
from napari_hotspot.session import HotspotSession, PromptResult, TrackResult

#: Adaptation trains in chunks of about this long (at least one optimiser step) per lock hold.
ADAPT_CHUNK_SECONDS = 0.25
#: Pause after each lock hold of a long job, so a thread waiting for the lock (a click) gets it first.
_HANDOVER_SECONDS = 0.002
#: Threads Qt's global thread pool keeps beyond the CPU count, for Qt's own short tasks. Qt scales
#: images on that pool (napari's activity indicator does when a progress bar appears) while the main
#: thread waits and holds the GIL; when our workers, waiting for the GIL or the session lock, fill the
#: pool (2 threads on a 2-CPU machine) that wait never ends and the viewer deadlocks.
POOL_HEADROOM = 4


def reserve_pool_threads() -> None:
    """Make room in Qt's global thread pool for Qt's own tasks next to our workers (idempotent)."""
    from qtpy.QtCore import QThread, QThreadPool

    pool = QThreadPool.globalInstance()
    wanted = max(QThread.idealThreadCount(), 1) + POOL_HEADROOM
    if pool is not None and pool.maxThreadCount() < wanted:
        pool.setMaxThreadCount(wanted)


def worker_running(worker) -> bool:
    """Whether a started thread worker has not finished yet (its ``finished`` not yet handled here).

    superqt keeps every started worker in ``WorkerBase._worker_set`` until the main thread handles its
    end; ``is_running`` alone is False while a started worker still waits in the pool's queue.
    """
    if worker is None:
        return False
    from superqt.utils._qthreading import WorkerBase

    started = getattr(WorkerBase, "_worker_set", None)
    return worker in started if started is not None else bool(getattr(worker, "is_running", False))


def stop_workers(workers, timeout_s: float = 30.0) -> bool:
    """Ask each worker to quit and process Qt events until all have ended; True if they did in time.

    A dock that closes must do this: a worker that outlives it emits into Qt objects that are gone
    (``wrapped C/C++ object of type WorkerBaseSignals has been deleted``, then an abort at exit).
    """
    from qtpy.QtWidgets import QApplication

    live = [w for w in workers if w is not None]
    for worker in live:
        try:
            worker.quit()
        except RuntimeError:  # its Qt side is already gone
            pass
    end = time.monotonic() + timeout_s
    while any(worker_running(w) for w in live) and time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.005)
    QApplication.processEvents()
    return not any(worker_running(w) for w in live)


@dataclass(frozen=True)
class Sweep:
    """One ``session.propagate`` call: its keyword arguments."""

    kwargs: dict


def propagation_batches(session: HotspotSession, lock: threading.Lock, sweeps: Sequence[Sweep]) -> Iterator[list[TrackResult]]:
    """Run the sweeps one after the other; yield the results of each frame (all objects) as one list.

    A cancel takes effect at a yield, so it loses at most the frame in progress. The main thread
    applies the lists to the store and layers in small batches (see ``HotspotController``).
    """
    batch: list[TrackResult] = []
    for sweep in sweeps:
        # the dock ran the preflight as jobs of their own (``prompt_completions``, ``adaptation_steps``)
        results = session.propagate(**sweep.kwargs, preflight=False)
        while True:
            # one step at a time: a prefetch or a click can slip in between
            result = locked_call(lock, next, results, None)
            if result is None:
                break
            if batch and batch[-1].frame != result.frame:
                yield batch
                batch = []
            batch.append(result)
    if batch:
        yield batch


@dataclass(frozen=True)
class AdaptProgress:
    """Where an adaptation run stands: object ``index`` of ``total`` (``object_id``), its share of the
    budget done (``fraction``), optimiser steps and training seconds of this run so far, the anchor
    frames taken in so far (``frames``, only when ``phase`` is "frames") and, when ``done``, every
    frame the object's adaptation has learnt (``learnt``)."""

    object_id: int
    index: int
    total: int
    phase: str  # "frames": taking in anchor frames (encoder); "training"; "done": budget spent
    fraction: float = 0.0
    steps: int = 0
    seconds: float = 0.0
    frames: tuple[int, ...] = ()
    learnt: tuple[int, ...] = ()

    @property
    def done(self) -> bool:
        return self.phase == "done"

    @property
    def overall(self) -> float:
        """Fraction of the whole run (all objects) done."""
        return min(1.0, (self.index + min(self.fraction, 1.0)) / max(self.total, 1))


def _one_step_per_lock(lock: threading.Lock, steps: Iterator) -> Iterator:
    """Advance ``steps`` (a session generator) holding ``lock`` for one step at a time, with a short
    pause after each so a thread waiting for the lock (a click, a prefetch) gets it first."""
    while True:
        step = locked_call(lock, next, steps, None)
        if step is None:
            return
        time.sleep(_HANDOVER_SECONDS)
        yield step


_ADAPT_PHASES = {"frames": "frames", "training": "training", "adapted": "done"}


def adaptation_steps(
    session: HotspotSession,
    lock: threading.Lock,
    object_ids: Sequence[int],
    *,
    should_stop: Callable[[], bool] | None = None,
    chunk_seconds: float | None = None,
) -> Iterator[AdaptProgress]:
    """Adapt each object's tracker as the session's options say (``options.adapt_seconds`` of training,
    at most ``options.adapt_steps`` steps): the adaptation phase of ``HotspotSession.preflight_steps``.

    The lock is held for one anchor frame (an encoder pass over its synthetic views) or one chunk
    of training at a time, so clicks and frame encoding get in between. An object's run ends with a
    ``done`` progress; a stop (``should_stop`` or a quit) ends the generator without one, keeping
    whatever the object learnt so far. Anchors added meanwhile join the training at the next chunk.
    """
    chunk_seconds = ADAPT_CHUNK_SECONDS if chunk_seconds is None else chunk_seconds
    steps = session.preflight_steps(object_ids, complete=False, adapt_ids=object_ids, should_stop=should_stop,
                                    chunk_seconds=chunk_seconds)
    for s in _one_step_per_lock(lock, steps):
        phase = _ADAPT_PHASES[s.phase]
        yield AdaptProgress(s.object_id, s.index, s.total, phase, s.fraction, s.steps, s.seconds,
                            frames=s.frames if phase == "frames" else (),
                            learnt=s.frames if phase == "done" else ())


def encode_frame(
    session: HotspotSession, lock: threading.Lock, frame: int, with_gaze: bool = False
) -> tuple[int, np.ndarray | None]:
    """Encode ``frame`` into the session's feature cache (and EG-Net's gaze map when asked)."""

    def encode():
        if with_gaze:
            return session.gaze_map(frame)  # encodes the frame whole
        session.prefetch(frame)
        return None

    return frame, locked_call(lock, encode)


def refine_prompt(session: HotspotSession, lock: threading.Lock, object_id: int, frame: int, token: int,
                  results: dict, stop: threading.Event) -> tuple[int, int, int]:
    """The tracker passes that refine a prompt's first mask (``HotspotSession.refine_prompt``), into
    ``results`` under the lock (the GUI thread may take it from there first); returns its key. Set
    ``stop`` and it ends after the pass it is in, with nothing in ``results`` (to do again later)."""
    key = (object_id, frame, token)

    def refine():
        if key not in results and not stop.is_set():
            result = session.refine_prompt(object_id, frame, token, should_stop=stop.is_set)
            if result is not None or not stop.is_set():
                results[key] = result

    locked_call(lock, refine)
    return key


def gaze_prompts(
    session: HotspotSession, lock: threading.Lock, object_id: int, fixations: dict[int, list[tuple[float, float]]]
) -> Iterator[PromptResult | Exception]:
    """Prompt ``object_id`` with recorded fixations, one frame at a time; a failing frame yields its error."""
    from napari_hotspot.errors import HotspotError

    for frame in sorted(fixations):
        try:
            result = locked_call(lock, session.add_prompt, frame, object_id, gaze=fixations[frame], source="gaze")
        except HotspotError as err:
            yield err
        else:
            yield result


def prompt_completions(session: HotspotSession, lock: threading.Lock, object_ids: Sequence[int]) -> Iterator[PromptResult]:
    """Complete each object's pending prompt masks over ``options.complete_frames`` frames: the
    completion phase of ``HotspotSession.preflight_steps``, one anchor per lock hold; yield, per
    anchor, its new mask or None when it stays as it was (a yield is where a cancel takes effect)."""
    for step in _one_step_per_lock(lock, session.preflight_steps(object_ids, adapt=False)):
        yield step.result


def _start(func: Callable, *args, connect: dict[str, Any], progress: dict | bool | None = None, **kwargs):
    from napari.qt.threading import create_worker

    reserve_pool_threads()
    worker = create_worker(func, *args, _progress=progress, _connect=connect, _ignore_errors=True,
                           _start_thread=False, **kwargs)
    worker.start()
    return worker


def start_propagation(session, lock, sweeps: Sequence[Sweep], *, connect: dict[str, Any]):
    """Run ``propagation_batches`` in a napari thread worker, without napari's progress bar: while one is
    shown the whole window repaints several times a frame, which under software OpenGL (Xvfb) cost the
    run more than half its speed (docs/benchmarks.md, "GUI speed through the dock"); the dock's status
    line shows the progress instead."""
    return _start(propagation_batches, session, lock, list(sweeps), connect=connect)


def start_encode(session, lock, frame: int, with_gaze: bool, *, connect: dict[str, Any]):
    """Encode one frame in a thread worker (no progress bar: it takes well under a second)."""
    return _start(encode_frame, session, lock, frame, with_gaze, connect=connect)


def start_refine(session, lock, object_id: int, frame: int, token: int, results: dict, stop: threading.Event, *,
                 connect: dict[str, Any]):
    """Refine a prompt's first mask in a thread worker (no progress bar: a fifth of a second)."""
    return _start(refine_prompt, session, lock, object_id, frame, token, results, stop, connect=connect)


def start_gaze_prompts(session, lock, object_id: int, fixations, *, connect: dict[str, Any]):
    """Prompt with recorded fixations in a thread worker, one progress tick per frame."""
    return _start(gaze_prompts, session, lock, object_id, fixations, connect=connect,
                  progress={"total": max(1, len(fixations)), "desc": "gaze prompts"})


def start_completion(session, lock, object_ids: Sequence[int], *, anchors: int, connect: dict[str, Any]):
    """Run ``prompt_completions`` in a napari thread worker, one progress tick per anchor of the
    ``anchors`` pending."""
    return _start(prompt_completions, session, lock, list(object_ids), connect=connect,
                  progress={"total": max(1, anchors), "desc": "completing prompt masks"})


def start_adaptation(session, lock, object_ids: Sequence[int], *, should_stop: Callable[[], bool] | None = None,
                     connect: dict[str, Any]):
    """Run ``adaptation_steps`` in a napari thread worker (the caller shows its progress)."""
    return _start(adaptation_steps, session, lock, list(object_ids), should_stop=should_stop, connect=connect)


class ClosesWithDock:
    """Mixin for the dock widgets: ``shutdown()`` runs when the dock goes away.

    napari's ``remove_dock_widget`` (the dock's close button) only unparents the widget, with no
    close event, so the unparenting after having been docked counts as the close; ``closeEvent``
    and the application quitting do too. ``shutdown`` must be idempotent.
    """

    _docked = False

    def event(self, event):  # noqa: D102 (Qt name)
        from qtpy.QtCore import QEvent

        if event.type() == QEvent.ParentChange:
            if self.parent() is not None:
                if not self._docked:
                    self._docked = True
                    from qtpy.QtWidgets import QApplication

                    app = QApplication.instance()
                    if app is not None:  # exit with the dock still open: stop its jobs first
                        ref = weakref.ref(self)  # the application must not keep a closed dock alive

                        def on_quit():
                            dock = ref()
                            if dock is not None:
                                dock.shutdown()

                        app.aboutToQuit.connect(on_quit)
            elif self._docked:
                self.shutdown()
        return super().event(event)

    def closeEvent(self, event):  # noqa: N802 (Qt name)
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        raise NotImplementedError
