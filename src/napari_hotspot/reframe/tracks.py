"""Subject tracks for reframing: per-frame hotspot and mask extent of each object (no Qt, no I/O).

An ``ObjectTrack`` is what the crop-path planner needs from a tracker: for every frame the object's
hotspot (x, y) in original-frame pixels (NaN when unknown: occluded, not tracked, or off the image)
and the extent of its mask as pixel-centre coordinates ``(x_min, y_min, x_max, y_max)`` (NaN when the
mask is empty). The compressed masks are kept for the coverage metrics. Builders read label volumes,
napari Points data and annotation stores; all coordinates follow napari: pixel centres are integers,
so the image spans ``-0.5 .. W - 0.5``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from napari_hotspot.annotations.masks import CompressedMask
from napari_hotspot.errors import AnnotationError
from napari_hotspot.mask_geometry import deepest_point as deepest_interior_point  # noqa: F401 (a name of this module)


@dataclass
class ObjectTrack:
    """One object's hotspot and mask extent in every frame of a video."""

    object_id: int
    hotspots: np.ndarray  # (T, 2) float64 x, y; NaN = unknown
    boxes: np.ndarray  # (T, 4) float64 x_min, y_min, x_max, y_max of mask pixel centres; NaN = no mask
    masks: list[CompressedMask | None] | None = None  # per frame, for coverage metrics

    def __post_init__(self) -> None:
        self.hotspots = np.asarray(self.hotspots, dtype=np.float64)
        self.boxes = np.asarray(self.boxes, dtype=np.float64)
        n = self.hotspots.shape[0] if self.hotspots.ndim == 2 else -1
        if self.hotspots.shape != (n, 2) or self.boxes.shape != (n, 4):
            raise AnnotationError(
                f"object {self.object_id}: hotspots must be (T, 2) and boxes (T, 4) with the same T, got "
                f"{self.hotspots.shape} and {self.boxes.shape}"
            )
        if self.masks is not None and len(self.masks) != n:
            raise AnnotationError(f"object {self.object_id}: {len(self.masks)} masks for {n} frames")

    @property
    def num_frames(self) -> int:
        return int(self.hotspots.shape[0])

    @property
    def visible(self) -> np.ndarray:
        """(T,) bool: the hotspot is known in that frame."""
        return np.isfinite(self.hotspots).all(axis=1)


def mask_box(mask: CompressedMask | None) -> tuple[float, float, float, float]:
    """Pixel-centre extent ``(x_min, y_min, x_max, y_max)`` of a compressed mask; NaNs when empty."""
    if mask is None or mask.bbox is None:
        return (np.nan, np.nan, np.nan, np.nan)
    y0, x0, y1, x1 = mask.bbox
    return (float(x0), float(y0), float(x1 - 1), float(y1 - 1))


def clean_hotspots(hotspots: np.ndarray, frame_size: tuple[int, int]) -> np.ndarray:
    """A copy of (T, 2) hotspots with rows that are non-finite or off the image set to NaN."""
    h, w = frame_size
    out = np.array(hotspots, dtype=np.float64, copy=True)
    if out.ndim != 2 or out.shape[1] != 2:
        raise AnnotationError(f"hotspots must be a (T, 2) array of x, y, got shape {out.shape}")
    x, y = out[:, 0], out[:, 1]
    with np.errstate(invalid="ignore"):
        bad = ~(np.isfinite(x) & np.isfinite(y) & (x >= -0.5) & (x <= w - 0.5) & (y >= -0.5) & (y <= h - 0.5))
    out[bad] = np.nan
    return out


def track_from_masks(
    object_id: int,
    masks: Iterable[np.ndarray | CompressedMask | None],
    hotspots: np.ndarray | None = None,
    frame_size: tuple[int, int] | None = None,
    fill_hotspots: bool = True,
) -> ObjectTrack:
    """Build a track from per-frame masks (bool arrays, compressed masks or None) and hotspots.

    ``hotspots`` is (T, 2) x, y with NaN for unknown; None means none are known. With
    ``fill_hotspots`` a frame whose mask is non-empty but whose hotspot is unknown gets the mask's
    deepest interior point, so an occluded head does not drop the subject. Hotspots off the image
    are treated as unknown (the object is leaving the frame).
    """
    packed: list[CompressedMask | None] = []
    for m in masks:
        if m is None or isinstance(m, CompressedMask):
            packed.append(m)
        else:
            packed.append(CompressedMask.from_array(np.asarray(m)))
    n = len(packed)
    shapes = {m.shape for m in packed if m is not None}
    if frame_size is None:
        if len(shapes) != 1:
            raise AnnotationError(f"object {object_id}: cannot tell the frame size from masks of shapes {shapes}")
        frame_size = shapes.pop()
    elif shapes - {tuple(frame_size)}:
        raise AnnotationError(f"object {object_id}: masks of shape {shapes} do not match frames of {tuple(frame_size)}")
    if hotspots is None:
        hot = np.full((n, 2), np.nan)
    else:
        hot = np.asarray(hotspots, dtype=np.float64)
        if hot.shape != (n, 2):
            raise AnnotationError(f"object {object_id}: hotspots have shape {hot.shape}, expected ({n}, 2)")
        hot = clean_hotspots(hot, frame_size)
    boxes = np.array([mask_box(m) for m in packed], dtype=np.float64).reshape(n, 4)
    if fill_hotspots:
        for t in np.flatnonzero(~np.isfinite(hot).all(axis=1)):
            if packed[t] is not None and packed[t].area > 0:
                point = deepest_interior_point(packed[t].to_array())
                hot[t] = point
    return ObjectTrack(int(object_id), hot, boxes, packed)


def label_object_ids(labels, frames: Sequence[int] | None = None) -> list[int]:
    """Non-zero label values present in ``labels`` (T, H, W) at ``frames`` (default: all)."""
    frames = range(len(labels)) if frames is None else frames
    found: set[int] = set()
    for t in frames:
        found.update(int(v) for v in np.unique(np.asarray(labels[t])) if v != 0)
    return sorted(found)


def hotspots_from_points(points: np.ndarray, point_object_ids: np.ndarray | None, object_id: int,
                         num_frames: int) -> np.ndarray:
    """(T, 2) x, y hotspots of ``object_id`` from napari Points data ``(t, y, x)`` rows.

    ``point_object_ids`` (N,) says which object each point belongs to (None: all belong to it).
    A frame with several points of the object uses their mean; frames without one are NaN.
    """
    points = np.asarray(points, dtype=np.float64)
    out = np.full((num_frames, 2), np.nan)
    if points.size == 0:
        return out
    if points.ndim != 2 or points.shape[1] != 3:
        raise AnnotationError(f"hotspot points must be (N, 3) rows of (t, y, x), got shape {points.shape}")
    if point_object_ids is not None:
        ids = np.asarray(point_object_ids)
        if ids.shape != (points.shape[0],):
            raise AnnotationError(f"{ids.shape[0]} object ids for {points.shape[0]} hotspot points")
        points = points[ids == object_id]
    frames = np.rint(points[:, 0]).astype(np.int64)
    keep = (frames >= 0) & (frames < num_frames)
    frames, points = frames[keep], points[keep]
    sums = np.zeros((num_frames, 2))
    counts = np.zeros(num_frames)
    np.add.at(sums, frames, points[:, [2, 1]])
    np.add.at(counts, frames, 1)
    has = counts > 0
    out[has] = sums[has] / counts[has, None]
    return out


def tracks_from_labels(labels, object_ids: Sequence[int], hotspots: dict[int, np.ndarray] | None = None,
                       fill_hotspots: bool = True) -> list[ObjectTrack]:
    """Tracks of ``object_ids`` (priority order kept) from a (T, H, W) label volume (array-like, may be
    lazy) and optional per-object (T, 2) hotspots."""
    shape = tuple(labels.shape)
    if len(shape) != 3:
        raise AnnotationError(f"labels must be a (T, H, W) volume, got shape {shape}")
    num_frames, frame_size = shape[0], shape[1:]
    per_object: dict[int, list[CompressedMask | None]] = {int(o): [] for o in object_ids}
    for t in range(num_frames):
        frame = np.asarray(labels[t])
        for oid in per_object:
            m = frame == oid
            per_object[oid].append(CompressedMask.from_array(m) if m.any() else None)
    hotspots = hotspots or {}
    return [
        track_from_masks(oid, masks, hotspots.get(oid), frame_size, fill_hotspots)
        for oid, masks in per_object.items()
    ]


def tracks_from_store(store, object_ids: Sequence[int] | None = None, fill_hotspots: bool = True) -> list[ObjectTrack]:
    """Tracks of ``object_ids`` (default: every object, in store order) from an AnnotationStore."""
    ids = list(store.object_ids) if object_ids is None else [int(o) for o in object_ids]
    if not ids:
        raise AnnotationError("the annotations hold no objects to reframe on")
    tracks = []
    for oid in ids:
        if not store.has_object(oid):
            raise AnnotationError(f"object {oid} is not in the annotations (objects: {list(store.object_ids)})")
        masks: list[CompressedMask | None] = [None] * store.num_frames
        hot = np.full((store.num_frames, 2), np.nan)
        for t, entry in store.entries(oid).items():
            masks[t] = entry.packed_mask
            if entry.hotspot is not None and entry.hotspot.visible:
                hot[t] = (entry.hotspot.x, entry.hotspot.y)
        tracks.append(track_from_masks(oid, masks, hot, (store.height, store.width), fill_hotspots))
    return tracks


def primary_hotspots(tracks: Sequence[ObjectTrack]) -> np.ndarray:
    """(T, 2) per frame the hotspot of the first track (priority order) that knows it; NaN if none does."""
    out = np.full((tracks[0].num_frames, 2), np.nan)
    for tr in tracks:
        fill = ~np.isfinite(out).all(axis=1) & tr.visible
        out[fill] = tr.hotspots[fill]
    return out
