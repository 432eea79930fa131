"""Whole-video tracking runs: prompt -> propagate both ways -> masks and hotspots, streamed to disk.

The one place that `napari-hotspot track`, the evaluator and the batch runner share.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import track_output
from .errors import ProjectIOError, PromptError
from .fileio import describe_os_error, write_png_checked
from .video.masks import read_prompt_mask
from .session import HotspotSession

HOTSPOT_COLUMNS = track_output.HOTSPOT_COLUMNS

# Frame-cache budget for whole-video tracking: frames are read in order, so a small cache suffices
# and peak memory does not grow with video length up to the (default 256 MiB) viewer cache.
TRACK_CACHE_BYTES = 64 * 2**20


@dataclass
class Prompt:
    """A prompt for one object on one frame, in original-frame pixels."""

    kind: str  # mask | click | box | auto | gaze
    frame: int = 0
    object_id: int = 1
    mask: np.ndarray | None = None
    points: list[tuple[float, float]] = field(default_factory=list)
    negative: list[tuple[float, float]] = field(default_factory=list)
    box: tuple[float, float, float, float] | None = None
    gaze: list[tuple[float, float]] = field(default_factory=list)

    def check(self, session: HotspotSession) -> None:
        """Raise PromptError now for a frame off the video, a click off the image or a box with nothing
        on it, as `apply` would later (after a command has announced its adaptation)."""
        session.check_prompt(self.frame, list(self.points), self.box, negative=list(self.negative))

    def apply(self, session: HotspotSession):
        if self.kind == "mask":
            return session.add_prompt(self.frame, self.object_id, mask=self.mask)
        if self.kind == "click":
            pts = list(self.points) + list(self.negative)
            labels = [1] * len(self.points) + [0] * len(self.negative)
            return session.add_prompt(self.frame, self.object_id, points=pts, labels=labels)
        if self.kind == "box":
            return session.add_prompt(self.frame, self.object_id, box=self.box)
        if self.kind == "gaze":
            return session.add_prompt(self.frame, self.object_id, gaze=self.gaze)
        if self.kind == "auto":
            return session.auto_prompt(self.frame, self.object_id)
        raise PromptError(f"unknown prompt kind {self.kind!r}")


def prompt_from_args(args, frame_size) -> Prompt:
    """The Prompt of a parsed command line's --mask / --click / --box / --auto (options.add_prompt_args)."""
    from .boxes import normalize_box

    negative = list(getattr(args, "negative", None) or [])
    if negative and not args.click:
        raise PromptError("--negative needs at least one --click")
    both = set(args.click or []) & set(negative)
    if both:
        x, y = sorted(both)[0]
        raise PromptError(f"{x:g},{y:g} is given both as --click and as --negative: which is it?")
    if args.mask is not None:
        return Prompt("mask", args.frame, mask=read_prompt_mask(args.mask, frame_size))
    if args.click:
        return Prompt("click", args.frame, points=list(args.click), negative=negative)
    if args.box is not None:
        return Prompt("box", args.frame, box=normalize_box(args.box))  # the rule of every entry point
    return Prompt("auto", args.frame)


@dataclass
class TrackRun:
    frames: int
    seconds: float
    fps: float
    timings: dict
    found_again: list[tuple[int, int]] = field(default_factory=list)  # (object id, frame) past an absence


def track_video(
    session: HotspotSession,
    prompts: list[Prompt],
    out_dir: Path,
    progress: Callable[[int, int], None] | None = None,
    absent: dict[int, list[int]] | None = None,
) -> TrackRun:
    """Apply the prompts, mark the `absent` frames ({object id: frames where it is not there}), prepare
    the objects as the session's options say (`HotspotSession.preflight`: complete the masks of sparse
    prompts, adapt each object's tracker), propagate forward and backward over the whole video, and
    write `out_dir/masks/<stem>.png` (uint8 object ids) and `out_dir/hotspots.csv` (an absent frame's
    row has no hotspot and the source "absent"; a frame no sweep reached, before an absence that comes
    before the prompt where the session does not look for the object again, "untracked" with confidence 0).

    Everything is written to a hidden partial folder in `out_dir` (each file's write checked and
    fsynced) and committed as one step (`track_output.commit`): after a failure, a kill or a full
    disk at any instant, a reader finds the complete previous output or the complete new one, and a
    shorter video leaves no stale masks of an earlier, longer one."""
    out_dir = Path(out_dir)
    with track_output.writing(out_dir) as partial:
        run, rows = _track_into(session, prompts, partial / track_output.MASKS, progress, absent or {})
        track_output.write_hotspots(partial, rows)
    return run


def _track_into(session, prompts, mask_dir: Path, progress, absent: dict[int, list[int]]) -> tuple[TrackRun, list[list]]:
    """track_video's work: the label PNGs into `mask_dir`; returns the run and the hotspot rows."""
    t0 = time.perf_counter()
    names = list(session.source.frame_names)
    H, W = session.frame_size
    per_frame: dict[int, dict[int, tuple]] = {}
    for p in prompts:
        r = p.apply(session)
        per_frame.setdefault(r.frame, {})[r.object_id] = (r.mask, r.hotspot, r.confidence, r.source)
    ids = sorted({p.object_id for p in prompts})
    prompted = {(p.frame, p.object_id) for p in prompts}
    for oid, frames in absent.items():
        if oid not in ids:
            raise PromptError(f"object {oid} is marked absent but has no prompt")
        for t in frames:
            if (t, oid) in prompted:
                raise PromptError(f"frame {t} is both object {oid}'s prompt and a frame where it is absent")
            session.mark_absent(t, oid)
            per_frame.setdefault(t, {})[oid] = (np.zeros((H, W), bool), None, 1.0, "absent")
    total = session.num_frames
    # Completion counts as tracking (it encodes the first frames); adaptation and its guard do not.
    adapting_before = session.preflight_seconds
    for r in session.preflight(ids):  # a completed mask replaces its prompt's
        per_frame[r.frame][r.object_id] = (r.mask, r.hotspot, r.confidence, r.source)
    adapt_seconds_used = session.preflight_seconds - adapting_before

    write_seconds = 0.0
    syncing = SyncBehind()

    def flush(t):
        nonlocal write_seconds
        tw = time.perf_counter()
        label = np.zeros((H, W), np.uint8)
        for oid in sorted(per_frame.get(t, {})):
            label[per_frame[t][oid][0]] = oid
        syncing.add(mask_dir / f"{names[t]}.png", label)  # encoded, written and fsynced on its thread
        write_seconds += time.perf_counter() - tw

    n_objects = len(ids)
    rows: list[list] = []

    def finish(t):
        # Write the frame's label PNG, keep only its hotspot rows: memory stays flat with video length.
        flush(t)
        for oid, (_m, hot, conf, src) in sorted(per_frame.pop(t).items()):
            vis = hot is not None
            rows.append([t, oid, f"{hot[0]:.2f}" if vis else "", f"{hot[1]:.2f}" if vis else "",
                         int(vis), f"{conf:.4f}", src])
        done.add(t)
        if progress:
            progress(len(done), total)

    done = set()
    found_again = []
    with syncing:
        for t in [t for t in sorted(per_frame) if len(per_frame[t]) == n_objects]:
            finish(t)
        for r in session.propagate(direction="both"):
            entry = per_frame.setdefault(r.frame, {})
            entry[r.object_id] = (r.mask, r.hotspot, r.confidence, "propagated")
            if r.found_again:
                found_again.append((r.object_id, r.frame))
            if len(entry) == n_objects:
                finish(r.frame)
        for t in range(total):  # frames some object never reached (before an absence before its prompt)
            if t not in done:
                entry = per_frame.setdefault(t, {})
                for oid in ids:  # not tracked: no mask, a row that says so
                    entry.setdefault(oid, (np.zeros((H, W), bool), None, 0.0, "untracked"))
                finish(t)
        tw = time.perf_counter()
        syncing.wait()  # every label PNG is on disk before the run can be committed
        write_seconds += time.perf_counter() - tw
    rows.sort(key=lambda r: (r[0], r[1]))
    secs = time.perf_counter() - t0
    # fps counts tracking only; the one-off adaptation time is reported apart.
    track_secs = secs - adapt_seconds_used
    return TrackRun(total, secs, total / track_secs if track_secs > 0 else 0.0,
                    {**session.timings, "write": write_seconds, "adapt": adapt_seconds_used}, found_again), rows


class SyncBehind:
    """Encode, write and fsync the label PNGs on a thread of their own, so the tracking thread neither
    encodes them (about 1 ms a 480p label, a twentieth of a frame's tracking on 2 cores) nor waits on
    the disk (an fsync waits on I/O: 0.4-1 ms a label here). The PNGs are written through a checked
    path (`write_png_checked`: cv2.imwrite reports success on a full disk); `wait()` returns once every
    file added is on disk and raises the first failure, so a run commits its output
    (`track_output.commit`) only after all of it is durable, as when each file was written and fsynced
    on the tracking thread. A failure seen earlier is raised at the next `add`. At most MAX_PENDING
    labels wait for the thread: a slow disk holds the run up instead of filling the memory."""

    MAX_PENDING = 16

    def __init__(self):
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="napari-hotspot-fsync")
        self._pending: list = []  # (path, future), oldest first

    def add(self, path: Path, image: np.ndarray | None = None) -> None:
        """fsync `path`, written already; or, given `image`, write it there as a PNG first."""
        while self._pending and (self._pending[0][1].done() or len(self._pending) >= self.MAX_PENDING):
            self._check(*self._pending.pop(0))
        self._pending.append((path, self._pool.submit(_write_and_fsync, path, image)))

    def wait(self) -> None:
        while self._pending:
            self._check(*self._pending.pop(0))

    @staticmethod
    def _check(path, future) -> None:
        try:
            future.result()
        except OSError as err:
            raise ProjectIOError(f"cannot write {path}: {describe_os_error(err)}") from err

    def __enter__(self) -> SyncBehind:
        return self

    def __exit__(self, *exc) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _write_and_fsync(path: Path, image: np.ndarray | None) -> None:
    if image is not None:
        write_png_checked(path, image)
    _fsync_file(path)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def terminal_progress(desc: str):
    """A tqdm progress callback on a terminal, a no-op otherwise."""
    if not sys.stderr.isatty():
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit="frame")

    def update(done, total):
        bar.total = total
        bar.n = done
        bar.refresh()

    return update, bar.close
