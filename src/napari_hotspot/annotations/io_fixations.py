"""Eye-tracker fixations: CSV import on a video time base, density maps, hotspot candidates, gaze prompts.

A fixation CSV has a header and one row per fixation (``,`` ``;`` or tab separated; column names
are case-insensitive):

* ``frame`` (video frame index) or ``time`` (eye-tracker clock; aliases ``t``, ``timestamp``,
  ``start``). Times become frames through a ``TimeBase``: ``frame = floor((time * unit - offset) * fps)``
  where ``offset`` (seconds) is the eye-tracker time at which frame 0 is shown and ``unit`` is the
  time column's unit (``s``, ``ms`` or ``us``; a column named ``time_ms`` etc. must agree with it).
  With both columns present, ``frame`` is used.
* ``x``, ``y``: gaze position in frame pixels (x = column, y = row), or in [0, 1] of the frame with
  ``normalized=True``. A row with both empty (tracking lost, blink) is skipped and counted.
* optional ``duration`` (any unit, used as a relative weight) and ``observer`` (aliases ``subject``,
  ``participant``).

Fixations before frame 0, after the last frame or off the image are dropped and counted in
``Fixations.dropped``; a file where nothing is left is an error (usually a wrong time base).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from napari_hotspot.annotations.model import AnnotationStore, Provenance
from napari_hotspot.annotations._parse import parse_float
from napari_hotspot.errors import AnnotationError, ProjectIOError, PromptError
from napari_hotspot.fileio import atomic_write

TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6}
_ALIASES = {
    "frame": ("frame", "frame_index", "frame_idx", "frame_number", "frame_no"),
    "time": ("time", "t", "timestamp", "start", "start_time", "onset"),
    "x": ("x", "gaze_x", "fixation_x", "fix_x", "x_px", "pos_x"),
    "y": ("y", "gaze_y", "fixation_y", "fix_y", "y_px", "pos_y"),
    "duration": ("duration", "dur", "fixation_duration"),
    "observer": ("observer", "subject", "participant", "viewer", "annotator", "observer_id"),
}


@dataclass(frozen=True)
class TimeBase:
    """How eye-tracker times map to video frames: ``floor((time * unit - offset) * fps)``.

    ``offset`` is in seconds, ``unit`` is the unit of the time column ("s", "ms" or "us").
    """

    fps: float
    offset: float = 0.0
    unit: str = "s"

    def __post_init__(self) -> None:
        try:
            fps, offset = float(self.fps), float(self.offset)
        except (TypeError, ValueError):
            raise AnnotationError(f"time base needs numbers: fps={self.fps!r}, offset={self.offset!r}") from None
        if not (math.isfinite(fps) and fps > 0):
            raise AnnotationError(f"time base fps must be a positive number, got {self.fps!r}")
        if not math.isfinite(offset):
            raise AnnotationError(f"time base offset must be a finite number of seconds, got {self.offset!r}")
        if self.unit not in TIME_UNITS:
            raise AnnotationError(f"time unit must be one of {sorted(TIME_UNITS)}, got {self.unit!r}")
        object.__setattr__(self, "fps", fps)
        object.__setattr__(self, "offset", offset)

    def frames(self, times) -> np.ndarray:
        """Frame index of each time (int64; may be negative or past the end of the video)."""
        seconds = np.asarray(times, dtype=float) * TIME_UNITS[self.unit] - self.offset
        # A tiny epsilon so a time exactly on a frame boundary lands in that frame despite rounding.
        return np.floor(seconds * self.fps + 1e-6).astype(np.int64)


@dataclass(frozen=True)
class Fixations:
    """Fixations on a video: frame, (x, y) pixels, duration (NaN if unknown) and observer per row."""

    frames: np.ndarray  # (N,) int64
    xy: np.ndarray  # (N, 2) float64, x = column, y = row
    durations: np.ndarray  # (N,) float64
    observers: tuple[str, ...]  # (N,)
    source: str = ""
    dropped: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.frames)
        if self.xy.shape != (n, 2) or self.durations.shape != (n,) or len(self.observers) != n:
            raise AnnotationError(
                f"fixation arrays disagree: {n} frames, xy {self.xy.shape}, durations "
                f"{self.durations.shape}, {len(self.observers)} observers"
            )

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def observer_names(self) -> list[str]:
        return sorted(set(self.observers))

    @property
    def weights(self) -> np.ndarray:
        """Per-fixation weight: its duration when every fixation has one, else 1."""
        if len(self.durations) and np.all(np.isfinite(self.durations)) and self.durations.sum() > 0:
            return self.durations.astype(float)
        return np.ones(len(self), dtype=float)

    def frames_with_fixations(self) -> list[int]:
        return sorted(set(int(f) for f in self.frames))

    def select(
        self, frame: int, window: int = 0, observers: Sequence[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """((n, 2) xy, (n,) weights) of the fixations on frames ``frame - window .. frame + window``."""
        keep = np.abs(self.frames - int(frame)) <= int(window)
        if observers is not None:
            wanted = set(observers)
            keep &= np.array([o in wanted for o in self.observers], dtype=bool)
        return self.xy[keep], self.weights[keep]

    def points_tyx(self) -> np.ndarray:
        """(N, 3) napari Points coordinates (frame, y, x)."""
        return np.column_stack([self.frames.astype(float), self.xy[:, 1], self.xy[:, 0]])


# ---------------------------------------------------------------------------- CSV import
def _find_column(header: list[str], kind: str) -> str | None:
    lowered = {h.strip().lower(): h for h in header}
    for alias in _ALIASES[kind]:
        if alias in lowered:
            return lowered[alias]
        for unit in TIME_UNITS if kind in ("time", "duration") else ():
            if f"{alias}_{unit}" in lowered:
                return lowered[f"{alias}_{unit}"]
    return None


def read_fixations_csv(
    path: str | os.PathLike,
    time_base: TimeBase | None = None,
    *,
    num_frames: int | None = None,
    frame_size: tuple[int, int] | None = None,
    normalized: bool = False,
) -> Fixations:
    """Read a fixation CSV (see the module docstring); ``frame_size`` is (H, W).

    Raises ProjectIOError naming the file, the line and the problem for a malformed file.
    """
    path = Path(path)
    if normalized and frame_size is None:
        raise ProjectIOError(f"{path}: normalised coordinates need the frame size (H, W)")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ProjectIOError(f"fixation file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ProjectIOError(f"cannot read fixation file {path}: {err}") from None
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise ProjectIOError(f"fixation file {path} is empty; expected a header such as frame,x,y")
    first = lines[0]
    delimiter = max(",;\t", key=first.count) if any(c in first for c in ",;\t") else ","
    if not any(c.isalpha() for c in first):  # no header: frame, x, y
        lines = [delimiter.join(("frame", "x", "y")), *lines]
    reader = csv.DictReader(lines, delimiter=delimiter)
    header = [h for h in (reader.fieldnames or []) if h is not None]
    columns = {kind: _find_column(header, kind) for kind in _ALIASES}
    if columns["x"] is None or columns["y"] is None:
        raise ProjectIOError(
            f"{path}: no x/y columns in header {header}; expected columns frame or time, x, y "
            "[, duration, observer]"
        )
    use_frame = columns["frame"] is not None
    if not use_frame and columns["time"] is None:
        raise ProjectIOError(f"{path}: needs a 'frame' or a 'time' column; the header is {header}")
    if not use_frame:
        if time_base is None:
            raise ProjectIOError(
                f"{path}: has times ({columns['time']!r}) but no time base was given; "
                "give the video fps, the time offset and the time unit"
            )
        suffix = columns["time"].strip().lower().rsplit("_", 1)[-1]
        if suffix in TIME_UNITS and suffix != time_base.unit:
            raise ProjectIOError(
                f"{path}: column {columns['time']!r} is in {suffix} but the time base says {time_base.unit}"
            )

    frames, xs, ys, durations, observers = [], [], [], [], []
    dropped = {"no_position": 0, "off_image": 0, "out_of_range": 0}
    try:
        for row in reader:
            where = f"{path} line {reader.line_num}"
            if None in row:
                raise ProjectIOError(f"{where}: more fields than the header has columns")
            if all((v or "").strip() == "" for v in row.values()):
                continue  # a blank line
            x = parse_float(row.get(columns["x"]), "x", where)
            y = parse_float(row.get(columns["y"]), "y", where)
            if x is None and y is None:
                dropped["no_position"] += 1
                continue
            if x is None or y is None:
                raise ProjectIOError(f"{where}: x and y must both be given (or both empty for lost tracking)")
            if use_frame:
                value = parse_float(row.get(columns["frame"]), "frame", where)
                if value is None or not float(value).is_integer():
                    raise ProjectIOError(f"{where}: frame {row.get(columns['frame'])!r} is not an integer")
                frames.append(int(value))
            else:
                value = parse_float(row.get(columns["time"]), "time", where)
                if value is None:
                    raise ProjectIOError(f"{where}: the time is empty")
                frames.append(int(time_base.frames([value])[0]))
            duration = parse_float(row.get(columns["duration"]), "duration", where) if columns["duration"] else None
            if duration is not None and duration < 0:
                raise ProjectIOError(f"{where}: duration {duration:g} is negative")
            durations.append(math.nan if duration is None else duration)
            xs.append(x)
            ys.append(y)
            observers.append((row.get(columns["observer"]) or "").strip() if columns["observer"] else "")
    except csv.Error as err:
        raise ProjectIOError(f"{path} is not a valid CSV file: {err}") from None

    frames_a = np.asarray(frames, dtype=np.int64)
    xy = np.column_stack([np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)]).reshape(-1, 2)
    if normalized:
        height, width = frame_size
        xy = xy * np.array([width, height], dtype=float) - 0.5  # [0, 1] spans the pixel edges
    keep = np.ones(len(frames_a), dtype=bool)
    if num_frames is not None:
        in_range = (frames_a >= 0) & (frames_a < int(num_frames))
        dropped["out_of_range"] = int((~in_range).sum())
        keep &= in_range
    else:
        negative = frames_a < 0
        dropped["out_of_range"] = int(negative.sum())
        keep &= ~negative
    if frame_size is not None:
        height, width = frame_size
        on_image = (xy[:, 0] >= -0.5) & (xy[:, 0] <= width - 0.5) & (xy[:, 1] >= -0.5) & (xy[:, 1] <= height - 0.5)
        dropped["off_image"] = int((keep & ~on_image).sum())
        keep &= on_image
    if not keep.any():
        total = len(frames_a) + dropped["no_position"]
        limits = f"frames 0..{num_frames - 1}" if num_frames is not None else "frame >= 0"
        raise ProjectIOError(
            f"{path}: none of its {total} fixations is usable ({dropped['no_position']} without position, "
            f"{dropped['out_of_range']} outside {limits}, {dropped['off_image']} off the image); "
            "check the time base (fps, offset, unit) and the coordinates"
        )
    observer_names = tuple(o or "observer" for o, k in zip(observers, keep) if k)
    return Fixations(
        frames=frames_a[keep],
        xy=xy[keep],
        durations=np.asarray(durations, dtype=float)[keep],
        observers=observer_names,
        source=str(path),
        dropped=dropped,
    )


#: The time base of a file whose times count frames (``t`` is the frame index): gaze prompt files.
FRAME_CLOCK = TimeBase(fps=1.0)


def read_frame_fixations(path: str | os.PathLike, *, num_frames: int | None = None,
                         frame_size: tuple[int, int] | None = None) -> dict[int, list[tuple[float, float]]]:
    """Fixations per frame, ``{frame: [(x, y), ...]}``, for gaze prompts (the tracking dock's gaze file,
    a batch manifest's ``gaze`` row): ``read_fixations_csv`` with a time column counting frames
    (``FRAME_CLOCK``: ``t,x,y`` rows with ``t`` the frame index) and a file without a header read as
    ``frame,x,y``. A problem with the file raises PromptError (it is a prompt's file)."""
    try:
        fixations = read_fixations_csv(path, FRAME_CLOCK, num_frames=num_frames, frame_size=frame_size)
    except ProjectIOError as err:
        raise PromptError(str(err)) from None
    by_frame: dict[int, list[tuple[float, float]]] = {}
    for t, (x, y) in zip(fixations.frames.tolist(), fixations.xy.tolist()):
        by_frame.setdefault(int(t), []).append((float(x), float(y)))
    return by_frame


def write_fixations_csv(path: str | os.PathLike, fixations: Fixations) -> Path:
    """Write fixations as ``frame,x,y,duration,observer`` (the format ``read_fixations_csv`` reads)."""
    path = Path(path)
    with atomic_write(path) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["frame", "x", "y", "duration", "observer"])
        for f, (x, y), d, o in zip(fixations.frames, fixations.xy, fixations.durations, fixations.observers):
            duration = repr(float(d)) if math.isfinite(d) else ""
            writer.writerow([int(f), repr(float(x)), repr(float(y)), duration, o])
    return path


# ---------------------------------------------------------------------------- density maps
def default_sigma(shape: tuple[int, int]) -> float:
    """Gaussian std for fixation maps: 2.5% of the frame diagonal (~1 degree of visual angle on a
    typical screen)."""
    return 0.025 * math.hypot(int(shape[0]), int(shape[1]))


def fixation_density(xy, shape: tuple[int, int], sigma: float | None = None, weights=None) -> np.ndarray:
    """(H, W) float32 fixation density summing to 1 (all zeros without fixations).

    Each fixation (rounded to its pixel) adds its weight, then a Gaussian blur of std ``sigma`` px.
    """
    height, width = int(shape[0]), int(shape[1])
    sigma = default_sigma(shape) if sigma is None else float(sigma)
    if not sigma > 0:
        raise AnnotationError(f"the density sigma must be positive, got {sigma}")
    points = np.asarray(xy, dtype=float).reshape(-1, 2)
    w = np.ones(len(points)) if weights is None else np.asarray(weights, dtype=float).reshape(-1)
    if len(w) != len(points):
        raise AnnotationError(f"{len(points)} fixations but {len(w)} weights")
    impulses = np.zeros((height, width), dtype=np.float32)
    cols = np.clip(np.round(points[:, 0]).astype(int), 0, width - 1) if len(points) else np.zeros(0, int)
    rows = np.clip(np.round(points[:, 1]).astype(int), 0, height - 1) if len(points) else np.zeros(0, int)
    np.add.at(impulses, (rows, cols), w.astype(np.float32))
    if not impulses.any():
        return impulses
    density = cv2.GaussianBlur(impulses, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)
    return (density / density.sum()).astype(np.float32)


def density_volume(
    fixations: Fixations,
    num_frames: int,
    shape: tuple[int, int],
    sigma: float | None = None,
    window: int = 0,
) -> np.ndarray:
    """(T, H, W) float32 density per frame (fixations of ``frame +- window``); frames without any are 0."""
    volume = np.zeros((int(num_frames), int(shape[0]), int(shape[1])), dtype=np.float32)
    frames = set()
    for f in fixations.frames_with_fixations():
        frames.update(range(max(f - window, 0), min(f + window, num_frames - 1) + 1))
    for frame in sorted(frames):
        xy, weights = fixations.select(frame, window)
        volume[frame] = fixation_density(xy, shape, sigma, weights)
    return volume


# ---------------------------------------------------------------------------- candidates & prompts
@dataclass(frozen=True)
class GazeCluster:
    """Fixations grouped by proximity: their weighted centroid, total weight and count."""

    x: float
    y: float
    weight: float
    count: int
    members: tuple[int, ...]  # indices into the selected fixations


def fixation_clusters(xy, radius: float, weights=None) -> list[GazeCluster]:
    """Single-linkage clusters (chains of fixations closer than ``radius`` px), heaviest first."""
    points = np.asarray(xy, dtype=float).reshape(-1, 2)
    if len(points) == 0:
        return []
    if not radius > 0:
        raise AnnotationError(f"cluster radius must be positive, got {radius}")
    w = np.ones(len(points)) if weights is None else np.asarray(weights, dtype=float).reshape(-1)
    if len(points) == 1:
        labels = np.zeros(1, dtype=int)
    else:
        from scipy.cluster.hierarchy import fcluster, linkage

        labels = fcluster(linkage(points, method="single"), t=radius, criterion="distance")
    clusters = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        mw = w[members]
        total = float(mw.sum())
        centre = (points[members] * mw[:, None]).sum(axis=0) / total if total > 0 else points[members].mean(axis=0)
        clusters.append(GazeCluster(float(centre[0]), float(centre[1]), total, len(members),
                                    tuple(int(i) for i in members)))
    clusters.sort(key=lambda c: (-c.weight, -c.count, c.x, c.y))
    return clusters


def default_cluster_radius(shape: tuple[int, int]) -> float:
    """Fixations closer than 5% of the frame diagonal count as looking at the same spot."""
    return 0.05 * math.hypot(int(shape[0]), int(shape[1]))


def hotspot_candidates(
    fixations: Fixations,
    frame: int,
    shape: tuple[int, int],
    *,
    window: int = 0,
    radius: float | None = None,
    mask: np.ndarray | None = None,
) -> list[GazeCluster]:
    """Hotspot candidates on a frame: clusters of nearby fixations, heaviest first.

    With ``mask`` (H, W bool, e.g. the object's mask) only clusters whose centroid is on it are kept.
    """
    xy, weights = fixations.select(frame, window)
    clusters = fixation_clusters(xy, default_cluster_radius(shape) if radius is None else radius, weights)
    if mask is None:
        return clusters
    region = np.asarray(mask, dtype=bool)
    kept = []
    for cluster in clusters:
        col, row = int(round(cluster.x)), int(round(cluster.y))
        if 0 <= row < region.shape[0] and 0 <= col < region.shape[1] and region[row, col]:
            kept.append(cluster)
    return kept


def gaze_prompt_points(
    fixations: Fixations,
    frame: int,
    shape: tuple[int, int],
    *,
    window: int = 0,
    largest_cluster: bool = True,
    radius: float | None = None,
) -> np.ndarray:
    """(n, 2) fixations to prompt an object with: those of the heaviest cluster (or all of them)."""
    xy, weights = fixations.select(frame, window)
    if len(xy) == 0:
        raise AnnotationError(
            f"no fixation on frame {frame} (window +-{window}); fixations exist on frames "
            f"{_frames_summary(fixations.frames_with_fixations())}"
        )
    if not largest_cluster:
        return xy
    clusters = fixation_clusters(xy, default_cluster_radius(shape) if radius is None else radius, weights)
    return xy[list(clusters[0].members)]


def _frames_summary(frames: list[int]) -> str:
    if not frames:
        return "none"
    return ", ".join(str(f) for f in frames[:8]) + (" ..." if len(frames) > 8 else "")


def init_object_from_gaze(
    session,
    store: AnnotationStore,
    fixations: Fixations,
    frame: int,
    obj_id: int | None = None,
    *,
    window: int = 0,
    largest_cluster: bool = True,
    radius: float | None = None,
    annotator: str = "gaze",
):
    """Prompt an object with the fixations on ``frame`` (in place of EG-Net) and store the result.

    Calls ``session.add_prompt(frame, obj_id, gaze=points)``; the mask and hotspot it returns become
    the store's KEYFRAME entry (the object is added when ``obj_id`` is None or unknown). Returns the
    session's PromptResult.
    """
    points = gaze_prompt_points(fixations, frame, (store.height, store.width), window=window,
                                largest_cluster=largest_cluster, radius=radius)
    with store.batch(f"initialise object from gaze on frame {frame}"):  # rolled back if the prompt fails
        if obj_id is None:
            obj_id = store.add_object().id
        elif not store.has_object(obj_id):
            store.add_object(obj_id=obj_id)
        result = session.add_prompt(frame, obj_id, gaze=[tuple(p) for p in points], source="gaze")
        hotspot = None
        if result.hotspot is not None:
            hotspot = (min(max(result.hotspot[0], 0.0), store.width - 1.0),
                       min(max(result.hotspot[1], 0.0), store.height - 1.0))
        store.set_frame(obj_id, frame, mask=result.mask, hotspot=hotspot,
                        confidence=float(min(max(result.confidence, 0.0), 1.0)),
                        provenance=Provenance.KEYFRAME, annotator=annotator)
    return result
