"""The Qt-free annotation data model: objects, per-(object, frame) masks and hotspots, annotator labels.

The AnnotationStore is changed only through undoable actions (see ``actions``); masks are kept
compressed (``CompressedMask``) so a long video costs far less than T*H*W bytes. Change listeners
registered on ``store.events`` are called with ``(obj_id, frames)`` after every change.
"""

from __future__ import annotations

import enum
import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Union

import numpy as np

from napari_hotspot.annotations.actions import (
    ActionGroup,
    ActionHistory,
    SetAnnotatorHotspot,
    SetEntry,
    SetObject,
    StoreAction,
)
from napari_hotspot.annotations.masks import CompressedMask
from napari_hotspot.annotations.palette import default_color
from napari_hotspot.errors import AnnotationError

logger = logging.getLogger(__name__)

#: Largest object id: label images are uint16.
MAX_OBJECT_ID = 65535


class Provenance(str, enum.Enum):
    """Where an annotation came from; the string values are what files store."""

    AUTOMATIC = "automatic"
    PROPAGATED = "propagated"
    USER_CORRECTED = "user_corrected"
    KEYFRAME = "keyframe"
    DERIVED = "derived"
    IMPORTED = "imported"
    ACCEPTED = "accepted"  # a tracked mask the user kept as it is (the dock's Keep as keyframe)

    @classmethod
    def parse(cls, value: Provenance | str) -> Provenance:
        """Accept a Provenance or its string value (case-insensitive) or member name."""
        if isinstance(value, Provenance):
            return value
        if isinstance(value, str):
            text = value.strip().lower()
            for member in cls:
                if text in (member.value, member.name.lower()):
                    return member
        allowed = ", ".join(m.value for m in cls)
        raise AnnotationError(f"unknown provenance {value!r}; expected one of: {allowed}")


#: Provenances that count as user-confirmed keyframes for propagation.
KEYFRAME_PROVENANCES = frozenset({Provenance.KEYFRAME, Provenance.USER_CORRECTED, Provenance.ACCEPTED})


def _as_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise AnnotationError(f"{what} must be an integer, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class ObjectInfo:
    """A tracked object: id >= 1 (the label value), display name and RGB colour."""

    id: int
    name: str
    color: tuple[int, int, int]

    def __post_init__(self) -> None:
        obj_id = _as_int(self.id, "object id")
        if not 1 <= obj_id <= MAX_OBJECT_ID:
            raise AnnotationError(f"object id must be in 1..{MAX_OBJECT_ID}, got {obj_id}")
        if not isinstance(self.name, str):
            raise AnnotationError(f"object name must be a string, got {self.name!r}")
        try:
            color = tuple(int(c) for c in self.color)
        except (TypeError, ValueError):
            raise AnnotationError(f"object colour must be 3 integers 0..255, got {self.color!r}") from None
        if len(color) != 3 or not all(0 <= c <= 255 for c in color):
            raise AnnotationError(f"object colour must be 3 integers 0..255, got {self.color!r}")
        object.__setattr__(self, "id", obj_id)
        object.__setattr__(self, "color", color)


@dataclass(frozen=True)
class Hotspot:
    """A hotspot in pixel coordinates of the original frame: x = column, y = row.

    Pixel centres are integers (napari convention), so valid positions are
    ``-0.5 <= x <= W - 0.5`` and ``-0.5 <= y <= H - 0.5``. ``visible=False`` marks an occluded hotspot.
    """

    x: float
    y: float
    visible: bool = True

    def __post_init__(self) -> None:
        try:
            x, y = float(self.x), float(self.y)
        except (TypeError, ValueError):
            raise AnnotationError(f"hotspot coordinates must be numbers, got x={self.x!r}, y={self.y!r}") from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise AnnotationError(f"hotspot coordinates must be finite, got x={x!r}, y={y!r}")
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "visible", bool(self.visible))

    def in_image(self, height: int, width: int) -> bool:
        return -0.5 <= self.x <= width - 0.5 and -0.5 <= self.y <= height - 0.5


HotspotLike = Union[Hotspot, tuple[float, float], tuple[float, float, bool]]


@dataclass(frozen=True)
class FrameAnnotation:
    """What is known about one object in one frame. ``packed_mask`` is None when no mask is set."""

    packed_mask: CompressedMask | None = None
    hotspot: Hotspot | None = None
    confidence: float | None = None
    provenance: Provenance = Provenance.AUTOMATIC
    annotator: str = ""
    timestamp: float = field(default_factory=time.time)

    @property
    def mask(self) -> np.ndarray | None:
        """The (H, W) boolean mask, decompressed into a fresh array, or None."""
        return None if self.packed_mask is None else self.packed_mask.to_array()

    @property
    def has_mask(self) -> bool:
        return self.packed_mask is not None

    @property
    def is_absent(self) -> bool:
        """A mask is set and it is empty: the object is not on this frame (as a keyframe: the user said
        so). Read from the packed mask's area, without decompressing it."""
        return self.packed_mask is not None and self.packed_mask.area == 0

    @property
    def is_keyframe(self) -> bool:
        return self.provenance in KEYFRAME_PROVENANCES


@dataclass(frozen=True)
class AnnotatorHotspot:
    """One annotator's hotspot label for (object, frame); ``hotspot=None`` means "no hotspot seen"."""

    hotspot: Hotspot | None
    provenance: Provenance = Provenance.USER_CORRECTED
    seconds_spent: float | None = None
    timestamp: float = field(default_factory=time.time)


class StoreEvents:
    """A plain callback list: every callback gets ``(obj_id, frames)`` after a change.

    ``frames`` is a sorted tuple of the frames whose entries changed; it is empty when only the
    object itself changed (added, renamed, recoloured).
    """

    def __init__(self) -> None:
        self._callbacks: list[Callable[[int, tuple[int, ...]], Any]] = []

    def connect(self, callback: Callable[[int, tuple[int, ...]], Any]) -> Callable:
        if callback not in self._callbacks:
            self._callbacks.append(callback)
        return callback

    def disconnect(self, callback: Callable[[int, tuple[int, ...]], Any]) -> None:
        if callback in self._callbacks:
            self._callbacks.remove(callback)

    def emit(self, obj_id: int, frames: tuple[int, ...]) -> None:
        for callback in list(self._callbacks):
            try:
                callback(obj_id, frames)
            except Exception:  # a broken listener must not corrupt the store's own bookkeeping
                logger.exception("annotation change listener %r failed", callback)


class _Keep:
    """Sentinel: "leave this field as it is" in ``AnnotationStore.set_frame``."""

    _instance: _Keep | None = None

    def __new__(cls) -> _Keep:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Any = _Keep()


class AnnotationStore:
    """Sparse per-(object, frame) annotations of one video of ``num_frames`` frames of H x W pixels.

    Read freely; change only through the public mutators, each recorded as an undoable action.
    Use ``with store.batch("name"):`` to make many changes one undo step (rolled back if the
    block raises).
    """

    def __init__(self, num_frames: int, height: int, width: int, *, max_undo: int = 200) -> None:
        for value, what in ((num_frames, "num_frames"), (height, "height"), (width, "width")):
            if _as_int(value, what) < 1:
                raise AnnotationError(f"{what} must be >= 1, got {value}")
        self.num_frames = int(num_frames)
        self.height = int(height)
        self.width = int(width)
        self.events = StoreEvents()
        self.history = ActionHistory(max_undo)
        #: Increases on every applied change (including undo/redo); autosave compares it.
        self.revision = 0
        self._objects: dict[int, ObjectInfo] = {}  # insertion order = stacking order
        self._entries: dict[int, dict[int, FrameAnnotation]] = {}
        self._annotator: dict[str, dict[tuple[int, int], AnnotatorHotspot]] = {}
        self._batch_stack: list[int] = []  # start index into _pending per open batch
        self._batch_names: list[str] = []
        self._pending: list[StoreAction] = []

    # ------------------------------------------------------------------ shape & objects
    @property
    def shape(self) -> tuple[int, int, int]:
        """(num_frames, height, width)."""
        return (self.num_frames, self.height, self.width)

    @property
    def objects(self) -> list[ObjectInfo]:
        """Objects in stacking order (later ones are drawn on top)."""
        return list(self._objects.values())

    @property
    def object_ids(self) -> list[int]:
        return list(self._objects)

    def has_object(self, obj_id: int) -> bool:
        return obj_id in self._objects

    def get_object(self, obj_id: int) -> ObjectInfo:
        self._check_object(obj_id)
        return self._objects[obj_id]

    def add_object(
        self,
        name: str | None = None,
        color: tuple[int, int, int] | None = None,
        obj_id: int | None = None,
    ) -> ObjectInfo:
        """Add an object (next free id unless given) with a default distinct colour; returns it."""
        if obj_id is None:
            obj_id = max(self._objects, default=0) + 1
            if obj_id > MAX_OBJECT_ID:  # ids were used sparsely up to the top: take the lowest free one
                obj_id = next(i for i in range(1, MAX_OBJECT_ID + 1) if i not in self._objects)
        obj_id = _as_int(obj_id, "object id")
        if obj_id in self._objects:
            raise AnnotationError(f"object id {obj_id} already exists; ids must be unique")
        if len(self._objects) >= MAX_OBJECT_ID:
            raise AnnotationError(f"cannot add more than {MAX_OBJECT_ID} objects")
        info = ObjectInfo(
            id=obj_id,
            name=f"object {obj_id}" if name is None else name,
            color=default_color(obj_id) if color is None else color,
        )
        self._do(SetObject(obj_id, info, None, len(self._objects)))
        return info

    def rename_object(self, obj_id: int, name: str) -> ObjectInfo:
        old = self.get_object(obj_id)
        name = str(name).strip()
        if not name:  # messages, exports and the reframe report name objects by it
            raise AnnotationError(f"object {obj_id} needs a name: an empty one is not kept")
        new = replace(old, name=name)
        self._do(SetObject(obj_id, new, old, self._position(obj_id)))
        return new

    def recolor_object(self, obj_id: int, color: tuple[int, int, int]) -> ObjectInfo:
        old = self.get_object(obj_id)
        new = replace(old, color=color)
        self._do(SetObject(obj_id, new, old, self._position(obj_id)))
        return new

    def remove_object(self, obj_id: int) -> None:
        """Remove an object with all its entries and all annotators' hotspots for it (one undo step)."""
        info = self.get_object(obj_id)
        with self.batch(f"remove {info.name}"):
            for frame in self.frames_with(obj_id):
                self._do(SetEntry(obj_id, frame, None, self._entries[obj_id][frame]))
            for annotator in self.annotators():
                for (oid, frame), record in list(self._annotator[annotator].items()):
                    if oid == obj_id:
                        self._do(SetAnnotatorHotspot(annotator, obj_id, frame, None, record))
            self._do(SetObject(obj_id, None, info, self._position(obj_id)))

    # ------------------------------------------------------------------ per-frame entries
    def set_frame(
        self,
        obj_id: int,
        frame: int,
        *,
        mask: np.ndarray | CompressedMask | None = KEEP,
        hotspot: HotspotLike | None = KEEP,
        confidence: float | None = KEEP,
        provenance: Provenance | str = KEEP,
        annotator: str = KEEP,
        timestamp: float | None = None,
    ) -> FrameAnnotation:
        """Set fields of the (object, frame) entry; omitted fields keep their value, ``None`` clears.

        A new entry defaults to no mask, no hotspot, no confidence, AUTOMATIC, annotator "".
        ``timestamp`` defaults to now.
        """
        self._check_object(obj_id)
        frame = self._check_frame(frame)
        old = self._entries.get(obj_id, {}).get(frame)
        new = self._changed_entry(old, mask, hotspot, confidence, provenance, annotator, timestamp)
        self._do(SetEntry(obj_id, frame, new, old))
        return new

    def _changed_entry(self, old, mask, hotspot, confidence, provenance, annotator, timestamp) -> FrameAnnotation:
        base = old if old is not None else FrameAnnotation()
        return FrameAnnotation(
            packed_mask=base.packed_mask if mask is KEEP else self._validate_mask(mask),
            hotspot=base.hotspot if hotspot is KEEP else self._validate_hotspot(hotspot),
            confidence=base.confidence if confidence is KEEP else _validate_confidence(confidence),
            provenance=base.provenance if provenance is KEEP else Provenance.parse(provenance),
            annotator=base.annotator if annotator is KEEP else _validate_annotator(annotator),
            timestamp=time.time() if timestamp is None else _validate_timestamp(timestamp),
        )

    def amend_frame(self, obj_id: int, frame: int, expected: FrameAnnotation, **fields: Any) -> FrameAnnotation | None:
        """Change the (object, frame) entry as ``set_frame`` would, as part of the undo step that wrote
        ``expected`` there: for a result that arrives in two steps (a click's first mask, then its
        refined one), so one undo still removes the whole click. Does nothing and returns None unless
        ``expected`` is still the entry. When that step is no longer the last one to touch the entry
        (or is inside a group, or an undone step or the open batch touches it), the change is its own
        undo step instead (or joins the open batch)."""
        self._check_object(obj_id)
        frame = self._check_frame(frame)
        if self._entries.get(obj_id, {}).get(frame) is not expected:
            return None
        done = self.history.done
        step = None
        later = [*self._pending, *self.history.undone]  # steps whose `old` would still be `expected`
        if not any(key == (obj_id, frame) for a in later for key in a.touched()):
            for i in range(len(done) - 1, -1, -1):
                action = done[i]
                if isinstance(action, SetEntry) and (action.obj_id, action.frame) == (obj_id, frame):
                    step = i if action.new is expected else None
                    break
                if any(key == (obj_id, frame) for key in action.touched()):
                    break
        if step is None:
            return self.set_frame(obj_id, frame, **fields)
        unknown = set(fields) - {"mask", "hotspot", "confidence", "provenance", "annotator", "timestamp"}
        if unknown:
            raise TypeError(f"amend_frame() got unexpected fields {sorted(unknown)}")
        get = {k: fields.get(k, KEEP) for k in ("mask", "hotspot", "confidence", "provenance", "annotator")}
        new = self._changed_entry(expected, **get, timestamp=fields.get("timestamp"))
        self.history.replace_done(step, SetEntry(obj_id, frame, new, done[step].old))
        change = SetEntry(obj_id, frame, new, expected)
        change.apply(self)
        self._notify(change)
        return new

    def clear_frame(self, obj_id: int, frame: int) -> None:
        """Delete the (object, frame) entry; no-op when there is none."""
        self._check_object(obj_id)
        frame = self._check_frame(frame)
        old = self._entries.get(obj_id, {}).get(frame)
        if old is not None:
            self._do(SetEntry(obj_id, frame, None, old))

    def get(self, obj_id: int, frame: int) -> FrameAnnotation | None:
        self._check_object(obj_id)
        return self._entries.get(obj_id, {}).get(self._check_frame(frame))

    def mask(self, obj_id: int, frame: int) -> np.ndarray | None:
        entry = self.get(obj_id, frame)
        return None if entry is None else entry.mask

    def hotspot(self, obj_id: int, frame: int) -> Hotspot | None:
        entry = self.get(obj_id, frame)
        return None if entry is None else entry.hotspot

    def frames_with(self, obj_id: int) -> list[int]:
        """Sorted frames that have an entry for ``obj_id``."""
        self._check_object(obj_id)
        return sorted(self._entries.get(obj_id, {}))

    def keyframes(self, obj_id: int) -> list[int]:
        """Sorted frames whose entry is a KEYFRAME, USER_CORRECTED or ACCEPTED."""
        self._check_object(obj_id)
        return sorted(f for f, e in self._entries.get(obj_id, {}).items() if e.is_keyframe)

    def object_keyframes(self, obj_id: int) -> list[int]:
        """Sorted keyframes whose mask shows the object: the ones tracking and adaptation can start from
        (not those without a mask, nor those where the object is absent: an empty mask)."""
        self._check_object(obj_id)
        return sorted(f for f, e in self._entries.get(obj_id, {}).items()
                      if e.is_keyframe and e.has_mask and not e.is_absent)

    def entries(self, obj_id: int) -> dict[int, FrameAnnotation]:
        """A copy of ``{frame: entry}`` for one object."""
        self._check_object(obj_id)
        return dict(sorted(self._entries.get(obj_id, {}).items()))

    def iter_entries(self, obj_id: int | None = None) -> Iterator[tuple[int, int, FrameAnnotation]]:
        """``(obj_id, frame, entry)`` in stacking order, then frame order."""
        ids = self.object_ids if obj_id is None else [obj_id]
        for oid in ids:
            for frame, entry in self.entries(oid).items():
                yield oid, frame, entry

    def iter_frame(self, frame: int) -> Iterator[tuple[int, FrameAnnotation]]:
        """``(obj_id, entry)`` for every object with an entry in ``frame``, in stacking order."""
        frame = self._check_frame(frame)
        for oid in self._objects:
            entry = self._entries.get(oid, {}).get(frame)
            if entry is not None:
                yield oid, entry

    def label_frame(self, frame: int) -> np.ndarray:
        """(H, W) label image (object id per pixel, 0 = background); later objects paint on top.

        uint8 when every object id fits in 255, else uint16.
        """
        dtype = np.uint8 if max(self._objects, default=0) <= 255 else np.uint16
        labels = np.zeros((self.height, self.width), dtype=dtype)
        for oid, entry in self.iter_frame(frame):
            if entry.packed_mask is not None:
                entry.packed_mask.paint(labels, oid)
        return labels

    def __len__(self) -> int:
        """Number of (object, frame) entries."""
        return sum(len(e) for e in self._entries.values())

    @property
    def nbytes(self) -> int:
        """Approximate memory held by annotations (compressed masks + fixed per-entry overhead)."""
        total = 0
        for per_object in self._entries.values():
            for entry in per_object.values():
                total += 200  # entry object, dict slot, hotspot: a fixed estimate
                if entry.packed_mask is not None:
                    total += entry.packed_mask.nbytes
        for per_annotator in self._annotator.values():
            total += 200 * len(per_annotator)
        return total

    # ------------------------------------------------------------------ annotator hotspots
    def set_annotator_hotspot(
        self,
        annotator: str,
        obj_id: int,
        frame: int,
        hotspot: HotspotLike | None,
        provenance: Provenance | str = Provenance.USER_CORRECTED,
        seconds_spent: float | None = None,
        timestamp: float | None = None,
    ) -> AnnotatorHotspot:
        """Set one annotator's own hotspot label (never touches the main entries or other annotators)."""
        annotator = _validate_annotator(annotator)
        if not annotator:
            raise AnnotationError("annotator name must be a non-empty string for annotator hotspots")
        self._check_object(obj_id)
        frame = self._check_frame(frame)
        if seconds_spent is not None:
            seconds_spent = _validate_nonnegative(seconds_spent, "seconds_spent")
        record = AnnotatorHotspot(
            hotspot=self._validate_hotspot(hotspot),
            provenance=Provenance.parse(provenance),
            seconds_spent=seconds_spent,
            timestamp=time.time() if timestamp is None else _validate_timestamp(timestamp),
        )
        old = self._annotator.get(annotator, {}).get((obj_id, frame))
        self._do(SetAnnotatorHotspot(annotator, obj_id, frame, record, old))
        return record

    def clear_annotator_hotspot(self, annotator: str, obj_id: int, frame: int) -> None:
        """Delete one annotator's label for (object, frame); no-op when there is none."""
        self._check_object(obj_id)
        frame = self._check_frame(frame)
        old = self._annotator.get(annotator, {}).get((obj_id, frame))
        if old is not None:
            self._do(SetAnnotatorHotspot(annotator, obj_id, frame, None, old))

    def annotator_hotspots(self, annotator: str) -> dict[tuple[int, int], AnnotatorHotspot]:
        """A copy of ``{(obj_id, frame): record}`` for one annotator (empty if unknown)."""
        return dict(sorted(self._annotator.get(annotator, {}).items()))

    def annotators(self) -> list[str]:
        """Sorted names of annotators that have at least one hotspot label."""
        return sorted(self._annotator)

    # ------------------------------------------------------------------ undo / redo / batch
    @contextmanager
    def batch(self, name: str = "batch") -> Iterator[None]:
        """Group every change inside the block into one undo step; roll back if the block raises."""
        self._batch_stack.append(len(self._pending))
        self._batch_names.append(name)
        try:
            yield
        except BaseException:
            start = self._batch_stack.pop()
            self._batch_names.pop()
            for action in reversed(self._pending[start:]):
                action.inverse().apply(self)
            del self._pending[start:]
            if not self._batch_stack:
                self._pending = []
            raise
        start = self._batch_stack.pop()
        self._batch_names.pop()
        if self._batch_stack:
            return  # nested: the outermost batch records the group
        actions, self._pending = self._pending, []
        if actions:
            group = ActionGroup(actions, name)
            self.history.add_new_action(group)
            self._notify(group)

    @property
    def in_batch(self) -> bool:
        return bool(self._batch_stack)

    def undo(self) -> bool:
        """Undo the last step; returns False when there is nothing to undo."""
        self._refuse_in_batch("undo")
        action = self.history.pop_undo()
        if action is None:
            return False
        inverse = action.inverse()
        inverse.apply(self)
        self._notify(inverse)
        return True

    def redo(self) -> bool:
        """Redo the last undone step; returns False when there is nothing to redo."""
        self._refuse_in_batch("redo")
        action = self.history.pop_redo()
        if action is None:
            return False
        action.apply(self)
        self._notify(action)
        return True

    @property
    def can_undo(self) -> bool:
        return self.history.can_undo

    @property
    def can_redo(self) -> bool:
        return self.history.can_redo

    def clear_history(self) -> None:
        """Forget undo/redo steps (e.g. right after loading a project)."""
        self._refuse_in_batch("clear the history")
        self.history.clear()

    # ------------------------------------------------------------------ internals
    def _do(self, action: StoreAction) -> None:
        action.apply(self)
        if self._batch_stack:
            self._pending.append(action)
        else:
            self.history.add_new_action(action)
            self._notify(action)

    def _notify(self, action: StoreAction) -> None:
        changed: dict[int, set[int]] = {}
        for obj_id, frame in action.touched():
            frames = changed.setdefault(obj_id, set())
            if frame is not None:
                frames.add(frame)
        for obj_id, frames in changed.items():
            self.events.emit(obj_id, tuple(sorted(frames)))

    def _refuse_in_batch(self, what: str) -> None:
        if self._batch_stack:
            raise AnnotationError(f"cannot {what} inside an open batch ({self._batch_names[-1]!r})")

    # Primitive slot writers: only actions call these. They bump the revision.
    def _put_entry(self, obj_id: int, frame: int, entry: FrameAnnotation | None) -> None:
        per_object = self._entries.setdefault(obj_id, {})
        if entry is None:
            per_object.pop(frame, None)
            if not per_object:
                del self._entries[obj_id]
        else:
            per_object[frame] = entry
        self.revision += 1

    def _put_object(self, obj_id: int, info: ObjectInfo | None, position: int) -> None:
        if info is None:
            self._objects.pop(obj_id, None)
        elif obj_id in self._objects:
            self._objects[obj_id] = info
        else:  # (re)insert at its stacking position so undoing a removal restores the order
            items = list(self._objects.items())
            items.insert(min(position, len(items)), (obj_id, info))
            self._objects = dict(items)
        self.revision += 1

    def _put_annotator_hotspot(
        self, annotator: str, obj_id: int, frame: int, record: AnnotatorHotspot | None
    ) -> None:
        per_annotator = self._annotator.setdefault(annotator, {})
        if record is None:
            per_annotator.pop((obj_id, frame), None)
            if not per_annotator:
                del self._annotator[annotator]
        else:
            per_annotator[(obj_id, frame)] = record
        self.revision += 1

    def _position(self, obj_id: int) -> int:
        return list(self._objects).index(obj_id)

    def _check_object(self, obj_id: int) -> None:
        if obj_id not in self._objects:
            known = ", ".join(str(i) for i in self._objects) or "none"
            raise AnnotationError(f"unknown object id {obj_id!r}; known object ids: {known}")

    def _check_frame(self, frame: int) -> int:
        frame = _as_int(frame, "frame index")
        if not 0 <= frame < self.num_frames:
            raise AnnotationError(
                f"frame {frame} is out of range; expected 0..{self.num_frames - 1} "
                f"({self.num_frames} frames)"
            )
        return frame

    def _validate_mask(self, mask: np.ndarray | CompressedMask | None) -> CompressedMask | None:
        if mask is None:
            return None
        expected = (self.height, self.width)
        if isinstance(mask, CompressedMask):
            if mask.shape != expected:
                raise AnnotationError(f"mask has shape {mask.shape}, expected (H, W) = {expected}")
            return mask
        array = np.asarray(mask)
        if array.shape != expected:
            raise AnnotationError(f"mask has shape {array.shape}, expected (H, W) = {expected}")
        return CompressedMask.from_array(array)

    def _validate_hotspot(self, hotspot: HotspotLike | None) -> Hotspot | None:
        if hotspot is None:
            return None
        if not isinstance(hotspot, Hotspot):
            try:
                if not isinstance(hotspot, (tuple, list, np.ndarray)):
                    raise TypeError
                hotspot = Hotspot(*hotspot)
            except TypeError:
                raise AnnotationError(
                    f"hotspot must be a Hotspot or (x, y[, visible]), got {hotspot!r}"
                ) from None
        if not hotspot.in_image(self.height, self.width):
            raise AnnotationError(
                f"hotspot (x={hotspot.x}, y={hotspot.y}) is outside the image; expected "
                f"-0.5 <= x <= {self.width - 0.5} and -0.5 <= y <= {self.height - 0.5} "
                f"for a {self.height}x{self.width} frame"
            )
        return hotspot


def _validate_confidence(value: float | None) -> float | None:
    if value is None:
        return None
    try:
        conf = float(value)
    except (TypeError, ValueError):
        raise AnnotationError(f"confidence must be a number in [0, 1] or None, got {value!r}") from None
    if not (math.isfinite(conf) and 0.0 <= conf <= 1.0):
        raise AnnotationError(f"confidence must be a number in [0, 1] or None, got {value!r}")
    return conf


def _validate_annotator(value: str) -> str:
    if not isinstance(value, str):
        raise AnnotationError(f"annotator must be a string, got {value!r}")
    return value


def _validate_timestamp(value: float) -> float:
    try:
        stamp = float(value)
    except (TypeError, ValueError):
        raise AnnotationError(f"timestamp must be seconds since the epoch, got {value!r}") from None
    if not math.isfinite(stamp):
        raise AnnotationError(f"timestamp must be finite, got {value!r}")
    return stamp


def _validate_nonnegative(value: float, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise AnnotationError(f"{what} must be a number >= 0, got {value!r}") from None
    if not (math.isfinite(number) and number >= 0):
        raise AnnotationError(f"{what} must be a number >= 0, got {value!r}")
    return number
