"""Background jobs of the hotspot widget: propagation, frame encoding, gaze prompts, in napari thread workers.

The job bodies are plain generator functions (no Qt; they can be iterated directly in tests);
``start_*`` wrap them in napari's ``create_worker`` so they run in a thread, report through
napari's progress bar and can be cancelled with ``worker.quit()``. The session is not thread-safe:
every call into it holds ``lock`` for one step only, so the main thread never waits long for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_hotspot.session import HotspotSession, PromptResult, TrackResult

@dataclass(frozen=True)
class Sweep:
    """One ``session.propagate`` call: keyword arguments plus the number of frames it may visit."""

    kwargs: dict
    frames: int


def propagation_batches(session: HotspotSession, lock: threading.Lock, sweeps: Sequence[Sweep]) -> Iterator[list[TrackResult]]:
    """Run the sweeps one after the other; yield the results of each frame (all objects) as one list.

    A cancel takes effect at a yield, so it loses at most the frame in progress. The main thread
    applies the lists to the store and layers in small batches (see ``HotspotController``).
    """
    batch: list[TrackResult] = []
    for sweep in sweeps:
        results = session.propagate(**sweep.kwargs)
        while True:
            with lock:  # one step at a time: a prefetch or a click can slip in between
                result = next(results, None)
            if result is None:
                break
            if batch and batch[-1].frame != result.frame:
                yield batch
                batch = []
            batch.append(result)
    if batch:
        yield batch


def encode_frame(
    session: HotspotSession, lock: threading.Lock, frame: int, with_gaze: bool = False
) -> tuple[int, np.ndarray | None]:
    """Encode ``frame`` into the session's feature cache (and EG-Net's gaze map when asked)."""
    with lock:
        session.features(frame)
        gaze = session.gaze_map(frame) if with_gaze else None
    return frame, gaze


def gaze_prompts(
    session: HotspotSession, lock: threading.Lock, object_id: int, fixations: dict[int, list[tuple[float, float]]]
) -> Iterator[PromptResult | Exception]:
    """Prompt ``object_id`` with recorded fixations, one frame at a time; a failing frame yields its error."""
    from napari_hotspot.errors import HotspotError

    for frame in sorted(fixations):
        try:
            with lock:
                yield session.add_prompt(frame, object_id, gaze=fixations[frame], source="gaze")
        except HotspotError as err:
            yield err


def _start(func: Callable, *args, connect: dict[str, Any], progress: dict | bool | None = None, **kwargs):
    from napari.qt.threading import create_worker

    worker = create_worker(func, *args, _progress=progress, _connect=connect, _ignore_errors=True,
                           _start_thread=False, **kwargs)
    worker.start()
    return worker


def start_propagation(session, lock, sweeps: Sequence[Sweep], *, connect: dict[str, Any], desc: str = "tracking"):
    """Run ``propagation_batches`` in a napari thread worker with a progress bar (one tick per batch)."""
    total = max(1, sum(s.frames for s in sweeps))
    return _start(propagation_batches, session, lock, list(sweeps), connect=connect,
                  progress={"total": total, "desc": desc})


def start_encode(session, lock, frame: int, with_gaze: bool, *, connect: dict[str, Any]):
    """Encode one frame in a thread worker (no progress bar: it takes well under a second)."""
    return _start(encode_frame, session, lock, frame, with_gaze, connect=connect)


def start_gaze_prompts(session, lock, object_id: int, fixations, *, connect: dict[str, Any]):
    """Prompt with recorded fixations in a thread worker, one progress tick per frame."""
    return _start(gaze_prompts, session, lock, object_id, fixations, connect=connect,
                  progress={"total": max(1, len(fixations)), "desc": "gaze prompts"})
