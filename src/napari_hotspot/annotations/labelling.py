"""Hotspot ground-truth labelling (Qt-free): the keyframe protocol, derived in-between frames, agreement.

Protocol (after the WCS-Net paper: five annotators mark the hotspot on every 10th frame, each first
deciding which part of the object is salient and then clicking that part consistently over time):

* ``keyframe_schedule`` picks the keyframes: every ``every``-th frame plus extra frames (e.g. frames
  QA found low-confidence). ``KeyframeLabeller`` walks one annotator through them, object by object,
  proposing the tracker's hotspot (the store's main track, filled beforehand from a tracker run, see
  ``run_tracker``). The annotator accepts it, moves it (a click) or marks the object not visible.
  Each label is stored with ``AnnotationStore.set_annotator_hotspot`` under the annotator's own name
  (never touching another annotator's labels) with the time spent on the keyframe.
* Between labelled keyframes the hotspot follows the tracker, re-anchored at each keyframe
  (``derive_track``): the offset annotator - tracker at the two surrounding keyframes is blended
  linearly in time and added to the tracker's hotspot. Those frames are stored as DERIVED.
* Agreement per object and frame (``frame_agreements``): mean pairwise distance, spread around the
  consensus, PCK between annotators (normalised by the object size of the store's main mask) and the
  consensus hotspot (geometric median) with outliers flagged, from ``evaluation.hotspot``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from napari_hotspot.annotations.model import AnnotationStore, AnnotatorHotspot, Hotspot, Provenance
from napari_hotspot.errors import AnnotationError
from napari_hotspot.evaluation.hotspot import annotator_agreement, frame_agreement, object_size

#: Paper protocol: a hotspot on every 10th frame.
DEFAULT_KEYFRAME_INTERVAL = 10


# ---------------------------------------------------------------------------- keyframes
def parse_frame_list(text: str, num_frames: int | None = None) -> list[int]:
    """Frames from text such as ``"5, 17 30-33"`` (ranges inclusive); sorted, without duplicates."""
    frames: set[int] = set()
    for token in text.replace(",", " ").replace(";", " ").split():
        try:
            if "-" in token.strip("-"):
                first, last = token.split("-", 1)
                lo, hi = int(first), int(last)
                if hi < lo:
                    raise AnnotationError(f"frame range {token!r} runs backwards; write it low-high")
                frames.update(range(lo, hi + 1))
            else:
                frames.add(int(token))
        except ValueError:
            raise AnnotationError(
                f"frame list {text!r}: {token!r} is not a frame number or range like 30-33"
            ) from None
    result = sorted(frames)
    if num_frames is not None:
        bad = [f for f in result if not 0 <= f < num_frames]
        if bad:
            raise AnnotationError(f"frame(s) {bad} out of range; the video has frames 0..{num_frames - 1}")
    return result


def keyframe_schedule(
    num_frames: int, every: int = DEFAULT_KEYFRAME_INTERVAL, extra: Iterable[int] = (), start: int = 0
) -> list[int]:
    """Sorted keyframes: ``start, start + every, ...`` below ``num_frames``, plus the ``extra`` frames."""
    for value, what, minimum in ((num_frames, "num_frames", 1), (every, "keyframe interval", 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
            raise AnnotationError(f"{what} must be an integer >= {minimum}, got {value!r}")
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or not 0 <= start < num_frames:
        raise AnnotationError(f"first keyframe must be in 0..{num_frames - 1}, got {start!r}")
    frames = set(range(int(start), int(num_frames), int(every)))
    for frame in extra:
        if isinstance(frame, bool) or not isinstance(frame, (int, np.integer)):
            raise AnnotationError(f"extra keyframe must be an integer frame index, got {frame!r}")
        if not 0 <= frame < num_frames:
            raise AnnotationError(f"extra keyframe {frame} is out of range; expected 0..{num_frames - 1}")
        frames.add(int(frame))
    return sorted(frames)


def tracker_track(store: AnnotationStore, obj_id: int) -> np.ndarray:
    """The store's main hotspot track of an object as (T, 2) (x, y); NaN where absent or not visible."""
    track = np.full((store.num_frames, 2), np.nan)
    for frame, entry in store.entries(obj_id).items():
        if entry.hotspot is not None and entry.hotspot.visible:
            track[frame] = (entry.hotspot.x, entry.hotspot.y)
    return track


def derive_track(
    labels: Mapping[int, tuple[float, float] | None],
    tracker: np.ndarray,
    *,
    hold_before: bool = False,
    hold_after: bool = False,
    frame_size: tuple[int, int] | None = None,
) -> dict[int, tuple[float, float]]:
    """Hotspots for the frames between labelled keyframes: the tracker re-anchored at each keyframe.

    ``labels`` maps keyframe -> annotator's (x, y), or None for "not visible"; ``tracker`` is the
    (T, 2) tracker track (NaN where it has no hotspot). For frame t between keyframes a < t < b::

        offset(k) = label(k) - tracker(k),   w = (t - a) / (b - a)
        derived(t) = tracker(t) + (1 - w) * offset(a) + w * offset(b)

    No point is derived next to a not-visible keyframe, where the tracker has no hotspot, or across
    a keyframe whose offset is unknown (tracker missing there). ``hold_before`` / ``hold_after`` extend
    the first / last keyframe's offset to the start / end of the video. Points are clipped to the
    image when ``frame_size`` (H, W) is given.
    """
    track = np.asarray(tracker, dtype=float)
    if track.ndim != 2 or track.shape[1] != 2:
        raise AnnotationError(f"the tracker track must be (T, 2) (x, y) points; got shape {track.shape}")
    num_frames = track.shape[0]
    keys = sorted(labels)
    for frame in keys:
        if not 0 <= frame < num_frames:
            raise AnnotationError(f"keyframe {frame} is outside the {num_frames}-frame tracker track")
    offsets: dict[int, np.ndarray | None] = {}
    for frame in keys:
        point = labels[frame]
        if point is None or not np.all(np.isfinite(track[frame])):
            offsets[frame] = None
        else:
            offsets[frame] = np.asarray(point, dtype=float) - track[frame]

    derived: dict[int, tuple[float, float]] = {}

    def put(t: int, offset: np.ndarray) -> None:
        if np.all(np.isfinite(track[t])):
            x, y = track[t] + offset
            if frame_size is not None:
                x = min(max(x, 0.0), frame_size[1] - 1.0)
                y = min(max(y, 0.0), frame_size[0] - 1.0)
            derived[t] = (float(x), float(y))

    for a, b in zip(keys, keys[1:]):
        if offsets[a] is None or offsets[b] is None:
            continue
        for t in range(a + 1, b):
            w = (t - a) / (b - a)
            put(t, (1 - w) * offsets[a] + w * offsets[b])
    if keys and hold_before and offsets[keys[0]] is not None:
        for t in range(0, keys[0]):
            put(t, offsets[keys[0]])
    if keys and hold_after and offsets[keys[-1]] is not None:
        for t in range(keys[-1] + 1, num_frames):
            put(t, offsets[keys[-1]])
    return derived


# ---------------------------------------------------------------------------- the labelling pass
@dataclass(frozen=True)
class KeyframeTask:
    """One keyframe of one object to label: the ``index``-th (0-based) of ``count`` for that object."""

    object_id: int
    frame: int
    index: int
    count: int

    @property
    def progress(self) -> str:
        return f"keyframe {self.index + 1} of {self.count}"


class KeyframeLabeller:
    """Walks one annotator through the keyframes of each object (object by object, frame order).

    The proposal on each keyframe is, in order: the point the annotator moved it to, the annotator's
    own earlier label, the tracker's hotspot (``tracker_tracks`` or the store's main track). ``accept``
    stores the proposal, ``move`` replaces it, ``mark_not_visible`` stores "no hotspot"; each stores
    the seconds spent on the keyframe (added up over visits) and re-derives the frames around it.
    Every label written goes under ``annotator`` and one undo step per keyframe.
    """

    def __init__(
        self,
        store: AnnotationStore,
        annotator: str,
        *,
        object_ids: Sequence[int] | None = None,
        every: int = DEFAULT_KEYFRAME_INTERVAL,
        extra_frames: Iterable[int] = (),
        start: int = 0,
        tracker_tracks: Mapping[int, np.ndarray] | None = None,
        derive: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(annotator, str) or not annotator.strip():
            raise AnnotationError(f"annotator id must be a non-empty string, got {annotator!r}")
        self.store = store
        self.annotator = annotator.strip()
        ids = store.object_ids if object_ids is None else [int(i) for i in object_ids]
        if not ids:
            raise AnnotationError("there are no objects to label; add or track an object first")
        for obj_id in ids:
            store.get_object(obj_id)  # raises a clear error for an unknown id
        self.object_ids = ids
        self.schedule = keyframe_schedule(store.num_frames, every, extra_frames, start)
        self.every = int(every)
        self.derive = derive
        self._clock = clock
        self._tracks: dict[int, np.ndarray] = {}
        for obj_id in ids:
            if tracker_tracks is not None and obj_id in tracker_tracks:
                track = np.asarray(tracker_tracks[obj_id], dtype=float)
                if track.shape != (store.num_frames, 2):
                    raise AnnotationError(
                        f"tracker track of object {obj_id} has shape {track.shape}; "
                        f"expected ({store.num_frames}, 2)"
                    )
                self._tracks[obj_id] = track
            else:
                self._tracks[obj_id] = tracker_track(store, obj_id)
        self.tasks = [
            KeyframeTask(obj_id, frame, k, len(self.schedule))
            for obj_id in ids
            for k, frame in enumerate(self.schedule)
        ]
        self.position = 0
        self._pending: tuple[float, float] | None = None
        self._shown_at = clock()

    # ---- where we are -----------------------------------------------------------------------
    @property
    def current(self) -> KeyframeTask | None:
        """The keyframe being labelled, None once every keyframe has been visited."""
        return self.tasks[self.position] if self.position < len(self.tasks) else None

    @property
    def done(self) -> bool:
        return self.position >= len(self.tasks)

    def tracker_track(self, obj_id: int) -> np.ndarray:
        """The (T, 2) tracker track used for proposals and derived frames (a copy)."""
        return self._tracks[obj_id].copy()

    def own_label(self, obj_id: int, frame: int) -> AnnotatorHotspot | None:
        """This annotator's record for (object, frame), derived or not."""
        return self.store.annotator_hotspots(self.annotator).get((obj_id, frame))

    def proposal(self) -> Hotspot | None:
        """What Enter would store on the current keyframe (None: nothing to propose, or not visible)."""
        task = self.current
        if task is None:
            return None
        if self._pending is not None:
            return Hotspot(*self._pending)
        own = self.own_label(task.object_id, task.frame)
        if own is not None and own.provenance != Provenance.DERIVED:
            return own.hotspot
        x, y = self._tracks[task.object_id][task.frame]
        if not (math.isfinite(x) and math.isfinite(y)):
            return None
        return Hotspot(float(x), float(y))

    @property
    def pending(self) -> tuple[float, float] | None:
        """The point the annotator clicked on the current keyframe and has not accepted yet."""
        return self._pending

    def progress(self, obj_id: int | None = None) -> tuple[int, int]:
        """(k, K): the current keyframe's 1-based number for the object and its keyframe count.

        For another object than the current one: (labelled keyframes, K).
        """
        task = self.current
        if obj_id is None:
            if task is None:
                return (len(self.schedule), len(self.schedule))
            obj_id = task.object_id
        if task is not None and task.object_id == obj_id:
            return (task.index + 1, task.count)
        return (len(self.labelled_keyframes(obj_id)), len(self.schedule))

    def progress_text(self) -> str:
        task = self.current
        if task is None:
            return f"{self.annotator}: all keyframes visited"
        name = self.store.get_object(task.object_id).name
        return f"{self.annotator} - {name} (object {task.object_id}): {task.progress}, frame {task.frame}"

    def labelled_keyframes(self, obj_id: int) -> dict[int, Hotspot | None]:
        """``{frame: hotspot or None (not visible)}`` of this annotator's own (non-derived) labels."""
        return {
            frame: record.hotspot
            for (oid, frame), record in self.store.annotator_hotspots(self.annotator).items()
            if oid == obj_id and record.provenance != Provenance.DERIVED
        }

    # ---- annotator actions -------------------------------------------------------------------
    def move(self, x: float, y: float) -> Hotspot:
        """The annotator clicked (x, y): it becomes the proposal until accepted (not stored yet)."""
        self._require_task("move the hotspot")
        hotspot = Hotspot(x, y)
        if not hotspot.in_image(self.store.height, self.store.width):
            raise AnnotationError(
                f"click ({hotspot.x:g}, {hotspot.y:g}) is off the {self.store.width}x{self.store.height} image"
            )
        self._pending = (hotspot.x, hotspot.y)
        return hotspot

    def accept(self) -> AnnotatorHotspot:
        """Store the proposal as this annotator's label of the current keyframe and go to the next.

        Provenance KEYFRAME when the tracker's (or an earlier) point is accepted as it is,
        USER_CORRECTED when the annotator moved it.
        """
        task = self._require_task("accept")
        proposal = self.proposal()
        if proposal is None:
            raise AnnotationError(
                f"object {task.object_id} frame {task.frame}: there is no hotspot to accept; "
                "click the salient part or mark the object not visible"
            )
        provenance = Provenance.USER_CORRECTED if self._pending is not None else Provenance.KEYFRAME
        return self._record(task, proposal, provenance)

    def mark_not_visible(self) -> AnnotatorHotspot:
        """Store "object not visible" (no hotspot) for the current keyframe and go to the next."""
        task = self._require_task("mark the object not visible")
        return self._record(task, None, Provenance.KEYFRAME)

    def skip(self) -> KeyframeTask | None:
        """Go to the next keyframe without storing anything."""
        self._require_task("skip")
        return self._go(self.position + 1)

    def back(self) -> KeyframeTask | None:
        """Go back one keyframe (its label, if any, becomes the proposal)."""
        return self._go(max(self.position - 1, 0))

    def go_to(self, position: int) -> KeyframeTask | None:
        if not 0 <= position <= len(self.tasks):
            raise AnnotationError(f"keyframe position {position} is out of range 0..{len(self.tasks)}")
        return self._go(position)

    def go_to_frame(self, obj_id: int, frame: int) -> KeyframeTask:
        """Jump to the keyframe ``frame`` of object ``obj_id``."""
        for k, task in enumerate(self.tasks):
            if task.object_id == obj_id and task.frame == frame:
                self._go(k)
                return task
        raise AnnotationError(
            f"frame {frame} of object {obj_id} is not a keyframe; keyframes are {self.schedule}"
        )

    def next_unlabelled(self) -> KeyframeTask | None:
        """Jump to the first keyframe (from the start) this annotator has not labelled yet."""
        own = self.store.annotator_hotspots(self.annotator)
        for k, task in enumerate(self.tasks):
            record = own.get((task.object_id, task.frame))
            if record is None or record.provenance == Provenance.DERIVED:
                return self._go(k)
        return self._go(len(self.tasks))

    # ---- derived frames ---------------------------------------------------------------------
    def refresh_derived(self, obj_id: int) -> list[int]:
        """Recompute this annotator's DERIVED frames of an object; returns the frames changed.

        Frames the annotator labelled are never touched; stale derived frames are removed.
        """
        labels = {f: (None if h is None or not h.visible else (h.x, h.y))
                  for f, h in self.labelled_keyframes(obj_id).items()}
        if labels:
            keys = sorted(labels)
            derived = derive_track(
                labels,
                self._tracks[obj_id],
                hold_before=keys[0] <= self.schedule[0],
                hold_after=keys[-1] >= self.schedule[-1],
                frame_size=(self.store.height, self.store.width),
            )
        else:
            derived = {}
        own = {frame: record for (oid, frame), record in self.store.annotator_hotspots(self.annotator).items()
               if oid == obj_id}
        changed = []
        with self.store.batch(f"{self.annotator}: derive hotspots of object {obj_id}"):
            for frame, record in own.items():
                if record.provenance == Provenance.DERIVED and frame not in derived:
                    self.store.clear_annotator_hotspot(self.annotator, obj_id, frame)
                    changed.append(frame)
            for frame, (x, y) in derived.items():
                record = own.get(frame)
                if record is not None and record.provenance != Provenance.DERIVED:
                    continue  # the annotator's own label always wins
                if record is not None and record.hotspot is not None and (record.hotspot.x, record.hotspot.y) == (x, y):
                    continue
                self.store.set_annotator_hotspot(self.annotator, obj_id, frame, (x, y), Provenance.DERIVED)
                changed.append(frame)
        return sorted(changed)

    # ---- internals -----------------------------------------------------------------------------
    def _require_task(self, what: str) -> KeyframeTask:
        task = self.current
        if task is None:
            raise AnnotationError(f"cannot {what}: every keyframe has been visited")
        return task

    def _go(self, position: int) -> KeyframeTask | None:
        self.position = position
        self._pending = None
        self._shown_at = self._clock()
        return self.current

    def _record(self, task: KeyframeTask, hotspot: Hotspot | None, provenance: Provenance) -> AnnotatorHotspot:
        spent = max(0.0, self._clock() - self._shown_at)
        earlier = self.own_label(task.object_id, task.frame)
        if earlier is not None and earlier.provenance != Provenance.DERIVED and earlier.seconds_spent is not None:
            spent += earlier.seconds_spent  # a revisited keyframe: the time adds up
        with self.store.batch(f"{self.annotator}: label object {task.object_id} frame {task.frame}"):
            record = self.store.set_annotator_hotspot(
                self.annotator, task.object_id, task.frame, hotspot, provenance, seconds_spent=spent
            )
            if self.derive:
                self.refresh_derived(task.object_id)
        self._go(self.position + 1)
        return record


# ---------------------------------------------------------------------------- the dock's layers, as arrays
def import_layer_data(
    store: AnnotationStore,
    frames: Sequence[int],
    points: np.ndarray | None = None,
    point_ids: np.ndarray | None = None,
    labels=None,
    add_object: Callable[[int], object] | None = None,
) -> None:
    """Copy a tracker's hotspots and reference masks into the store (one undo step).

    ``points``: (N, 3) rows (frame, y, x) with their object ids (``point_ids``, default 1); they fill
    frames without a keyframe entry. ``labels``: a (T, H, W) label volume (object ids), the reference
    for the object size agreement is normalised by (and for the exported masks): at ``frames`` its
    masks replace the tracker's, never a keyframe mask. ``add_object(obj_id)`` adds an object the
    store lacks (default: ``store.add_object``)."""
    add_object = add_object or (lambda obj_id: store.add_object(obj_id=obj_id))
    with store.batch("import layers for labelling"):
        if points is not None:
            coords = np.asarray(points, dtype=float)
            if coords.ndim != 2 or coords.shape[1] != 3:
                raise AnnotationError("tracker points must be (frame, y, x) rows")
            ids = np.ones(len(coords), dtype=int) if point_ids is None else np.asarray(point_ids, dtype=int)
            for (t, y, x), obj_id in zip(coords, ids):
                if not store.has_object(int(obj_id)):
                    add_object(int(obj_id))
                frame = int(round(t))
                entry = store.get(int(obj_id), frame)
                if entry is not None and entry.is_keyframe:
                    continue
                x = min(max(x, 0.0), store.width - 1.0)
                y = min(max(y, 0.0), store.height - 1.0)
                if entry is not None and entry.hotspot == Hotspot(x, y):
                    continue  # already imported: keep the entry (and the undo history) as it is
                store.set_frame(int(obj_id), frame, hotspot=(x, y), provenance=Provenance.IMPORTED)
        if labels is not None:
            for frame in frames:
                label = np.asarray(labels[frame])
                for obj_id in np.unique(label):
                    if obj_id == 0:
                        continue
                    obj_id = int(obj_id)
                    if not store.has_object(obj_id):
                        add_object(obj_id)
                    entry = store.get(obj_id, frame)
                    if entry is not None and entry.is_keyframe and entry.packed_mask is not None:
                        continue  # a mask the user made or confirmed stays
                    mask = label == obj_id
                    if entry is None or entry.packed_mask is None or not np.array_equal(entry.mask, mask):
                        store.set_frame(obj_id, frame, mask=mask)


def anchor_on_first_masks(
    store: AnnotationStore,
    labels,
    anchored: Callable[[int], bool],
    add_object: Callable[[int], object] | None = None,
) -> None:
    """Give each object of a (T, H, W) label volume that is not ``anchored`` yet a KEYFRAME mask on the
    first frame it appears in (the mask the tracker starts from); one undo step."""
    add_object = add_object or (lambda obj_id: store.add_object(obj_id=obj_id))
    seen: set[int] = set()
    with store.batch("anchor objects on their first mask"):
        for frame in range(store.num_frames):
            label = np.asarray(labels[frame])
            for value in np.unique(label):
                obj_id = int(value)
                if obj_id == 0 or obj_id in seen:
                    continue
                seen.add(obj_id)
                if anchored(obj_id):
                    continue
                if not store.has_object(obj_id):
                    add_object(obj_id)
                store.set_frame(obj_id, frame, mask=label == value, provenance=Provenance.KEYFRAME)


# ---------------------------------------------------------------------------- tracker pre-fill
def prompt_session_from_store(session, store: AnnotationStore, object_ids: Sequence[int] | None = None) -> list[int]:
    """Anchor every object the session has no prompt for on the store's keyframe masks.

    Each frame where the store has a non-empty KEYFRAME / USER_CORRECTED mask becomes an anchor,
    with its visible hotspot; an anchor without a hotspot gets the one the session picks (stored). An
    empty one marks the object absent there (`HotspotSession.mark_absent`).
    Returns the object ids; raises AnnotationError for an object with
    neither a session prompt nor a keyframe mask. ``session`` is a ``HotspotSession``.
    """
    ids = store.object_ids if object_ids is None else [int(i) for i in object_ids]
    if not ids:
        raise AnnotationError("there is no object to track; prompt one first (mask, click or gaze)")
    for obj_id in ids:
        if session.anchors(obj_id):
            continue
        anchored = False
        for frame in store.keyframes(obj_id):
            mask = store.mask(obj_id, frame)
            if mask is None:
                continue
            if not mask.any():  # an empty keyframe: the object is absent there (the tracking dock's erase)
                session.mark_absent(frame, obj_id)
                continue
            spot = store.hotspot(obj_id, frame)
            hotspot = None if spot is None or not spot.visible else _clip_to_image((spot.x, spot.y), store)
            kept = store.get(obj_id, frame).provenance is Provenance.ACCEPTED  # as the tracking dock syncs it
            result = session.add_prompt(frame, obj_id, mask=mask, hotspot=hotspot, source="kept" if kept else "mask")
            if spot is None and result.hotspot is not None:
                # the tracker's own hotspot for the anchor, so the keyframe has a proposal too
                store.set_frame(obj_id, frame, hotspot=_clip_to_image(result.hotspot, store))
            anchored = True
        if not anchored:
            raise AnnotationError(
                f"object {obj_id} has no keyframe mask to start the tracker from; "
                "prompt it (mask, click, gaze) first"
            )
    return ids


def store_track_results(store: AnnotationStore, results: Iterable) -> int:
    """Write tracker results (``TrackResult``: frame, object_id, mask, hotspot, confidence) into the
    store's main track as PROPAGATED, one undo step; keyframe entries are kept. Returns the count."""
    written = 0
    with store.batch("track hotspots for labelling"):
        for result in results:
            entry = store.get(result.object_id, result.frame)
            if entry is not None and entry.is_keyframe:
                continue
            hotspot = None if result.hotspot is None else _clip_to_image(result.hotspot, store)
            store.set_frame(
                result.object_id,
                result.frame,
                mask=result.mask,
                hotspot=hotspot,
                confidence=float(min(max(result.confidence, 0.0), 1.0)),
                provenance=Provenance.PROPAGATED,
                annotator="",
            )
            written += 1
    return written


def run_tracker(
    session,
    store: AnnotationStore,
    object_ids: Sequence[int] | None = None,
    progress: Callable[[int, int], object] | None = None,
) -> int:
    """Fill the store's main track (the labelling pre-fill) by propagating ``session`` both ways.

    Objects without a session prompt are anchored on the store's keyframe masks
    (``prompt_session_from_store``); results are stored with ``store_track_results``.
    Returns the number of entries written.
    """
    ids = prompt_session_from_store(session, store, object_ids)
    results = []
    for done, total, result in track_for_labelling(session, ids, store.num_frames):
        results.append(result)
        if progress is not None:
            progress(done, total)
    return store_track_results(store, results)


def track_for_labelling(session, ids: Sequence[int], num_frames: int) -> Iterator[tuple[int, int, object]]:
    """The pre-fill's tracking: ``session.propagate`` both ways (after the session's preflight, as its
    options say), as (results so far, results expected, result); the store is written apart
    (``store_track_results``), so a worker thread can run this and the main thread write."""
    total = len(ids) * num_frames
    for done, result in enumerate(session.propagate(list(ids), direction="both"), start=1):
        yield done, total, result


def _clip_to_image(xy: tuple[float, float], store: AnnotationStore) -> tuple[float, float]:
    return (min(max(float(xy[0]), 0.0), store.width - 1.0), min(max(float(xy[1]), 0.0), store.height - 1.0))


# ---------------------------------------------------------------------------- agreement
@dataclass(frozen=True)
class FrameAgreement:
    """How well the annotators agree on one object in one frame.

    Distances are NaN with fewer than two annotators who saw the hotspot; normalised values and PCK
    are NaN without an object size. ``outliers`` needs >= 3 annotators and an object size.
    """

    object_id: int
    frame: int
    annotators: tuple[str, ...]  # annotators who marked a visible hotspot
    not_visible: tuple[str, ...]  # annotators who said the object/hotspot is not visible
    consensus: tuple[float, float] | None
    mean_pairwise_px: float
    spread_px: float
    mean_pairwise_norm: float
    pck: float
    outliers: tuple[str, ...]
    object_size_px: float
    derived: bool  # True when at least one point is a DERIVED (in-between) point

    @property
    def n_annotators(self) -> int:
        return len(self.annotators)


def annotator_labels(
    store: AnnotationStore,
    obj_id: int,
    annotators: Sequence[str] | None = None,
    include_derived: bool = False,
) -> dict[int, dict[str, AnnotatorHotspot]]:
    """``{frame: {annotator: record}}`` of every label of an object (derived ones only if asked)."""
    store.get_object(obj_id)
    names = store.annotators() if annotators is None else list(annotators)
    by_frame: dict[int, dict[str, AnnotatorHotspot]] = {}
    for name in names:
        for (oid, frame), record in store.annotator_hotspots(name).items():
            if oid != obj_id or (record.provenance == Provenance.DERIVED and not include_derived):
                continue
            by_frame.setdefault(frame, {})[name] = record
    return dict(sorted(by_frame.items()))


def store_object_size(store: AnnotationStore, obj_id: int, frame: int, mode: str = "diagonal") -> float:
    """Object size (``evaluation.hotspot.object_size``) of the store's main mask; NaN without a mask."""
    mask = store.mask(obj_id, frame)
    return float("nan") if mask is None else object_size(mask, mode)


def frame_agreements(
    store: AnnotationStore,
    obj_id: int,
    annotators: Sequence[str] | None = None,
    *,
    include_derived: bool = False,
    pck_threshold: float = 0.10,
    outlier_threshold: float = 0.20,
    object_sizes: Mapping[int, float] | None = None,
    size_mode: str = "diagonal",
) -> list[FrameAgreement]:
    """Agreement of the annotators on every frame of an object that at least one of them labelled.

    Object sizes come from ``object_sizes`` ({frame: px}) or from the store's main masks.
    """
    rows = []
    for frame, records in annotator_labels(store, obj_id, annotators, include_derived).items():
        seen = {n: r.hotspot for n, r in records.items() if r.hotspot is not None and r.hotspot.visible}
        hidden = tuple(sorted(n for n in records if n not in seen))
        derived = any(r.provenance == Provenance.DERIVED for r in records.values())
        if object_sizes is not None and frame in object_sizes:
            size = float(object_sizes[frame])
        else:
            size = store_object_size(store, obj_id, frame, size_mode)
        names = tuple(sorted(seen))
        if not names:
            rows.append(FrameAgreement(obj_id, frame, (), hidden, None, math.nan, math.nan, math.nan,
                                       math.nan, (), size, derived))
            continue
        points = np.array([(seen[n].x, seen[n].y) for n in names], dtype=float)
        stats = frame_agreement(points, size if math.isfinite(size) else None, pck_threshold, outlier_threshold)
        outliers = tuple(n for n, flag in zip(names, stats["outliers"]) if flag)
        rows.append(
            FrameAgreement(
                object_id=obj_id,
                frame=frame,
                annotators=names,
                not_visible=hidden,
                consensus=tuple(stats["consensus"]),
                mean_pairwise_px=stats["mean_pairwise_px"],
                spread_px=stats["spread_px"],
                mean_pairwise_norm=stats["mean_pairwise_norm"],
                pck=stats["pck"],
                outliers=outliers,
                object_size_px=size,
                derived=derived,
            )
        )
    return rows


def annotator_tracks(
    store: AnnotationStore,
    obj_id: int,
    annotators: Sequence[str] | None = None,
    include_derived: bool = False,
) -> tuple[list[str], np.ndarray]:
    """(names, (A, T, 2) array) of each annotator's visible hotspots of an object; NaN elsewhere."""
    store.get_object(obj_id)
    names = store.annotators() if annotators is None else list(annotators)
    tracks = np.full((len(names), store.num_frames, 2), np.nan)
    for a, name in enumerate(names):
        for (oid, frame), record in store.annotator_hotspots(name).items():
            if oid != obj_id or record.hotspot is None or not record.hotspot.visible:
                continue
            if record.provenance == Provenance.DERIVED and not include_derived:
                continue
            tracks[a, frame] = (record.hotspot.x, record.hotspot.y)
    return names, tracks


def object_agreement(
    store: AnnotationStore,
    obj_id: int,
    annotators: Sequence[str] | None = None,
    *,
    include_derived: bool = False,
    pck_threshold: float = 0.10,
    outlier_threshold: float = 0.20,
    size_mode: str = "diagonal",
) -> dict:
    """Sequence-level agreement of an object (``evaluation.hotspot.annotator_agreement``).

    Adds ``annotators`` (names, in the order of ``outlier_rate``). Object sizes come from the store's
    main masks; frames without a mask give NaN normalised values.
    """
    names, tracks = annotator_tracks(store, obj_id, annotators, include_derived)
    if not names:
        raise AnnotationError(f"object {obj_id} has no annotator labels yet")
    masks = []
    empty = np.zeros((store.height, store.width), dtype=bool)
    for frame in range(store.num_frames):
        entry = store.get(obj_id, frame)
        masks.append(empty if entry is None or entry.packed_mask is None else entry.mask)
    result = annotator_agreement(tracks, masks, size_mode, pck_threshold, outlier_threshold)
    result["annotators"] = names
    return result


def annotator_points(store: AnnotationStore) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Every annotator's visible hotspots as napari Points data: (N, 3) rows (frame, y, x) and features
    ``annotator``, ``object_id``, ``provenance`` (value) and ``derived`` (an in-between point)."""
    rows, names, ids, provenance, derived = [], [], [], [], []
    for name in store.annotators():
        for (obj_id, frame), record in store.annotator_hotspots(name).items():
            if record.hotspot is None or not record.hotspot.visible:
                continue
            rows.append((frame, record.hotspot.y, record.hotspot.x))
            names.append(name)
            ids.append(obj_id)
            provenance.append(record.provenance.value)
            derived.append(record.provenance == Provenance.DERIVED)
    return np.asarray(rows, dtype=float).reshape(-1, 3), {
        "annotator": np.asarray(names, dtype=object), "object_id": np.asarray(ids, dtype=int),
        "provenance": np.asarray(provenance, dtype=object), "derived": np.asarray(derived, dtype=bool)}


def annotator_summary(store: AnnotationStore, annotator: str) -> dict:
    """Counts and timing of one annotator's work: labelled keyframes, not-visible marks, derived
    frames, total and mean seconds per labelled keyframe."""
    records = store.annotator_hotspots(annotator)
    labelled = [r for r in records.values() if r.provenance != Provenance.DERIVED]
    seconds = [r.seconds_spent for r in labelled if r.seconds_spent is not None]
    return {
        "annotator": annotator,
        "keyframes": len(labelled),
        "not_visible": sum(1 for r in labelled if r.hotspot is None or not r.hotspot.visible),
        "moved": sum(1 for r in labelled if r.provenance == Provenance.USER_CORRECTED),
        "derived": len(records) - len(labelled),
        "seconds_total": float(sum(seconds)),
        "seconds_per_keyframe": float(np.mean(seconds)) if seconds else float("nan"),
    }


def iter_consensus(
    store: AnnotationStore,
    object_ids: Sequence[int] | None = None,
    annotators: Sequence[str] | None = None,
    include_derived: bool = False,
    **agreement_options,
) -> Iterator[FrameAgreement]:
    """Frame agreements of every object (stacking order, then frame order)."""
    for obj_id in store.object_ids if object_ids is None else object_ids:
        yield from frame_agreements(store, obj_id, annotators, include_derived=include_derived,
                                    **agreement_options)
