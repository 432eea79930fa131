"""Crop-window paths: where a virtual camera of a given aspect ratio and zoom looks in every frame.

``plan_crop_path`` turns object tracks (hotspot + mask extent per frame) into one window per frame,
``(cx, cy, w, h)`` in original-frame pixels (pixel centres are integers), by solving, per shot and
per axis, the L1 camera-path linear program of ``l1.py``:

* hard: the window stays inside the image; it contains the priority hotspot with a margin
  (``margin`` x window size; reduced only where the hotspot is closer than that to the image edge);
  a user keyframe pins the window (within ``tolerance`` pixels) on its frame;
* soft, by cost: every object's mask extent inside the window (as much of it as the window allows),
  the other objects' hotspots inside the window (all subjects in view when they fit, the priority
  one otherwise), and a dead zone around the priority hotspot outside of which the camera is pulled
  towards it;
* objective: L1 norms of velocity, acceleration and jerk, weighted per camera mode: ``steady``
  (one fixed window per shot; hard zero velocity), ``track`` (follows closely), ``pan`` (prefers
  constant-velocity pans), ``auto`` (per shot and axis: steady when a fixed window frames the subject
  as well as tracking does, pan when the subject moves along a line, track otherwise).

Zoom (window height; width = aspect x height) is planned first with the same LP: a fixed user zoom,
or ``zoom=None`` for automatic zoom that frames the union of the masks with padding, smoothed.
Shots are planned independently (the path restarts at each cut). Frames where no subject is known
get no constraint, so the window holds its last position (easing out of a pan); a shot without any
subject holds the previous shot's window. When the constraints cannot all hold (a steady shot for a
subject that crosses the frame, a speed limit too low, keyframes that contradict each other), the
planner relaxes them in a fixed order and records a note on the shot instead of failing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from napari_hotspot.errors import HotspotError
from napari_hotspot.reframe.l1 import L1PathResult, SmoothnessWeights, SoftBound, solve_l1_path
from napari_hotspot.reframe.shots import shot_ranges
from napari_hotspot.reframe.tracks import ObjectTrack

MODES = ("auto", "steady", "track", "pan")


@dataclass(frozen=True)
class ModeSettings:
    """Path weights of one camera mode; ``dead_zone`` is a fraction of the window size (half-width),
    ``pull`` the cost per pixel per frame of the subject being outside it."""

    weights: SmoothnessWeights
    dead_zone: float
    pull: float
    constant: bool = False


MODE_SETTINGS: dict[str, ModeSettings] = {
    "steady": ModeSettings(SmoothnessWeights(10.0, 10.0, 100.0), 0.25, 0.05, constant=True),
    # Velocity weighted enough that the camera never winds up against the motion before a move.
    "track": ModeSettings(SmoothnessWeights(5.0, 10.0, 50.0), 0.08, 1.0),
    "pan": ModeSettings(SmoothnessWeights(2.0, 100.0, 30.0), 0.2, 0.3),
}
ZOOM_WEIGHTS = SmoothnessWeights(10.0, 20.0, 100.0)
ZOOM_PULL = 5.0  # per pixel per frame away from a fixed user zoom (keyframes bend it locally)
MASK_COST = 2.0  # per pixel of the priority mask outside the window, per frame
OTHER_HOTSPOT_COST = 20.0  # per pixel of another subject's hotspot outside its margin, per frame
SOFT_HOTSPOT_COST = 200.0  # the priority hotspot, when its hard constraint had to be relaxed
REST_COST = 1e-3  # pulls a subject-less shot to the previous window
GAP_VELOCITY_FACTOR = 20.0  # where no subject is known the camera settles instead of panning on


@dataclass(frozen=True)
class ReframeConfig:
    """What the user asks of the virtual camera."""

    aspect: float  # output width / height
    zoom: float | None = 1.0  # 1 = the largest window of that aspect; None = automatic
    mode: str = "auto"
    margin: float = 0.1  # hotspot-to-edge distance, fraction of the window size
    max_zoom: float = 4.0  # automatic zoom never crops tighter than this
    zoom_padding: float = 0.15  # automatic zoom: room around the masks, fraction of their size
    max_speed: float | None = None  # optional hard cap on the window centre's speed, px/frame

    def __post_init__(self) -> None:
        if not (isinstance(self.aspect, (int, float)) and math.isfinite(self.aspect) and self.aspect > 0):
            raise HotspotError(f"aspect ratio must be a positive number (width / height), got {self.aspect!r}")
        if self.zoom is not None and not (math.isfinite(self.zoom) and 1.0 <= self.zoom <= 20.0):
            raise HotspotError(f"zoom must be between 1 and 20 (1 = widest window), got {self.zoom!r}")
        if self.mode not in MODES:
            raise HotspotError(f"camera mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not 0.0 <= self.margin < 0.5:
            raise HotspotError(f"margin must be in [0, 0.5) of the window size, got {self.margin!r}")
        if not self.max_zoom >= 1.0:
            raise HotspotError(f"max_zoom must be >= 1, got {self.max_zoom!r}")
        if self.max_speed is not None and not self.max_speed > 0:
            raise HotspotError(f"max_speed must be a positive number of pixels per frame, got {self.max_speed!r}")


@dataclass(frozen=True)
class Keyframe:
    """A window the user placed on one frame; the path passes within ``tolerance`` pixels of it."""

    frame: int
    cx: float
    cy: float
    height: float | None = None  # None: keep the planned zoom on that frame
    tolerance: float = 1.0


@dataclass
class ShotPlan:
    """How one shot was framed: the camera mode used per axis and any relaxation that was needed."""

    start: int
    stop: int
    mode_x: str
    mode_y: str
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"start": self.start, "stop": self.stop, "mode_x": self.mode_x, "mode_y": self.mode_y,
                "notes": list(self.notes)}


@dataclass
class CropPath:
    """One crop window per frame: centres (T, 2) x, y and heights (T,); width = aspect x height."""

    centers: np.ndarray
    heights: np.ndarray
    aspect: float
    frame_size: tuple[int, int]
    shots: list[ShotPlan] = field(default_factory=list)

    @property
    def num_frames(self) -> int:
        return int(self.heights.shape[0])

    @property
    def widths(self) -> np.ndarray:
        return self.heights * self.aspect

    @property
    def windows(self) -> np.ndarray:
        """(T, 4) cx, cy, w, h."""
        return np.column_stack([self.centers, self.widths, self.heights])

    @property
    def cuts(self) -> list[int]:
        return [s.start for s in self.shots[1:]]

    def box(self, t: int) -> tuple[float, float, float, float]:
        """Window edges ``(x0, y0, x1, y1)`` of frame ``t`` (image edges are -0.5 and W - 0.5)."""
        cx, cy = self.centers[t]
        w, h = self.widths[t], self.heights[t]
        return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def parse_aspect(text: str | float) -> float:
    """``"9:16"``, ``"1.5"`` or a number -> width / height."""
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        s = str(text).strip()
        try:
            if ":" in s or "/" in s:
                a, b = s.replace("/", ":").split(":")
                value = float(a) / float(b)
            else:
                value = float(s)
        except (ValueError, ZeroDivisionError):
            raise HotspotError(f"aspect ratio must look like W:H (e.g. 9:16) or a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise HotspotError(f"aspect ratio must be positive, got {text!r}")
    return value


def base_window_height(frame_size: tuple[int, int], aspect: float) -> float:
    """Height of the largest window of ``aspect`` inside the frame (zoom 1)."""
    h, w = frame_size
    return float(min(h, w / aspect))


# ----------------------------------------------------------------------------------------- zoom
def _union_extent(tracks: Sequence[ObjectTrack], a: int, b: int) -> np.ndarray:
    """(n, 4) per-frame union of every subject's mask extent and hotspot; NaN where none is known."""
    n = b - a
    lo = np.full((n, 2), np.inf)
    hi = np.full((n, 2), -np.inf)
    for tr in tracks:
        box = tr.boxes[a:b]
        hot = tr.hotspots[a:b]
        for pts_lo, pts_hi in ((box[:, :2], box[:, 2:]), (hot, hot)):
            ok = np.isfinite(pts_lo).all(axis=1)
            lo[ok] = np.minimum(lo[ok], pts_lo[ok])
            hi[ok] = np.maximum(hi[ok], pts_hi[ok])
    out = np.column_stack([lo, hi])
    out[~np.isfinite(out).all(axis=1)] = np.nan
    return out


def plan_heights(tracks: Sequence[ObjectTrack], a: int, b: int, frame_size: tuple[int, int],
                 config: ReframeConfig, keyframes: Sequence[Keyframe] = (),
                 previous: float | None = None) -> tuple[np.ndarray, list[str]]:
    """Window heights for the frames ``a .. b - 1`` of one shot, and notes."""
    n = b - a
    base_h = base_window_height(frame_size, config.aspect)
    notes: list[str] = []
    lower = np.full(n, base_h / (config.max_zoom if config.zoom is None else max(config.max_zoom, config.zoom)))
    upper = np.full(n, base_h)
    soft: list[SoftBound] = []
    if config.zoom is not None:
        target = base_h / config.zoom
        soft += [SoftBound(np.full(n, target), side, ZOOM_PULL, "zoom") for side in ("lower", "upper")]
    else:
        ext = _union_extent(tracks, a, b)
        pad = 1.0 + 2.0 * config.zoom_padding
        need = np.maximum((ext[:, 3] - ext[:, 1] + 1.0) * pad, (ext[:, 2] - ext[:, 0] + 1.0) * pad / config.aspect)
        need = np.clip(need, lower, upper)  # NaN stays NaN: no subject, no pull
        if np.isfinite(need).any():
            soft += [SoftBound(need, "lower", 5.0, "zoom_fit"), SoftBound(need, "upper", 0.5, "zoom_tight")]
        else:
            rest = base_h if previous is None else previous
            soft += [SoftBound(np.full(n, rest), side, REST_COST, "rest") for side in ("lower", "upper")]
    for k in keyframes:
        if k.height is not None:
            v = float(np.clip(k.height, lower[k.frame - a], upper[k.frame - a]))
            lower[k.frame - a] = max(lower[k.frame - a], v - k.tolerance)
            upper[k.frame - a] = min(upper[k.frame - a], v + k.tolerance)
    if config.zoom is not None and not any(k.height is not None for k in keyframes):
        return np.full(n, base_h / config.zoom), notes
    res = solve_l1_path(lower, upper, ZOOM_WEIGHTS, soft)
    if not res.ok:
        notes.append(f"zoom: the optimiser gave no path ({res.status}); zoom held constant")
        value = base_h / config.zoom if config.zoom is not None else base_h
        return np.full(n, value), notes
    return np.clip(res.path, lower.min(), base_h), notes


# ----------------------------------------------------------------------------------------- centre
@dataclass
class _AxisProblem:
    lower: np.ndarray
    upper: np.ndarray
    soft: list[SoftBound]
    soft_hotspot: list[SoftBound]  # the priority hotspot's containment, as soft bounds (for relaxing)
    hard_lower: np.ndarray  # the bounds without hotspot containment (image + keyframes)
    hard_upper: np.ndarray
    primary: np.ndarray  # (n,) priority hotspot coordinate, NaN where none
    size: np.ndarray  # (n,) window extent along the axis
    velocity_scale: np.ndarray  # (n - 1,) per-step velocity weight factor


def _axis_problem(tracks: Sequence[ObjectTrack], a: int, b: int, axis: int, size: np.ndarray, extent: int,
                  config: ReframeConfig, settings: ModeSettings, keyframes: Sequence[Keyframe],
                  rest: float | None) -> _AxisProblem:
    n = b - a
    img_lo = size / 2 - 0.5
    img_hi = np.maximum(extent - 0.5 - size / 2, img_lo)
    margin = np.minimum(config.margin * size, size / 2)
    # Priority per frame: the first subject (in priority order) whose hotspot is known there.
    primary = np.full(n, np.nan)
    primary_of = np.full(n, -1)
    for i, tr in enumerate(tracks):
        vis = tr.visible[a:b] & (primary_of < 0)
        primary[vis] = tr.hotspots[a:b][vis, axis]
        primary_of[vis] = i
    has = np.isfinite(primary)
    lower, upper = img_lo.copy(), img_hi.copy()
    lower[has] = np.clip(primary[has] - size[has] / 2 + margin[has], img_lo[has], img_hi[has])
    upper[has] = np.clip(primary[has] + size[has] / 2 - margin[has], img_lo[has], img_hi[has])
    hard_lower, hard_upper = img_lo.copy(), img_hi.copy()
    for k in keyframes:
        i = k.frame - a
        v = float(np.clip((k.cx, k.cy)[axis], img_lo[i], img_hi[i]))
        lower[i] = hard_lower[i] = max(img_lo[i], v - k.tolerance)
        upper[i] = hard_upper[i] = min(img_hi[i], v + k.tolerance)
        has[i] = False  # the user's window wins over the hotspot on that frame
    soft: list[SoftBound] = []
    dz = settings.dead_zone * size
    pull = np.where(has, primary, np.nan)
    soft += [SoftBound(pull - dz, "lower", settings.pull, "dead_zone"),
             SoftBound(pull + dz, "upper", settings.pull, "dead_zone")]
    for i, tr in enumerate(tracks):
        box = tr.boxes[a:b]
        lo_edge, hi_edge = box[:, axis], box[:, axis + 2]
        is_primary = primary_of == i
        cost = np.where(is_primary, MASK_COST, 0.5 * MASK_COST)
        soft += [SoftBound(hi_edge - size / 2, "lower", cost, "mask"),
                 SoftBound(lo_edge + size / 2, "upper", cost, "mask")]
        hot = np.where(tr.visible[a:b] & ~is_primary, tr.hotspots[a:b, axis], np.nan)
        soft += [SoftBound(hot - size / 2 + margin, "lower", OTHER_HOTSPOT_COST, "others"),
                 SoftBound(hot + size / 2 - margin, "upper", OTHER_HOTSPOT_COST, "others")]
    if not has.any() and not keyframes:
        value = (extent - 1) / 2 if rest is None else rest
        soft += [SoftBound(np.full(n, value), side, REST_COST, "rest") for side in ("lower", "upper")]
    hot_soft = [SoftBound(np.where(has, lower, np.nan), "lower", SOFT_HOTSPOT_COST, "hotspot"),
                SoftBound(np.where(has, upper, np.nan), "upper", SOFT_HOTSPOT_COST, "hotspot")]
    seen = np.zeros(n, bool)
    for tr in tracks:
        seen |= tr.visible[a:b] | np.isfinite(tr.boxes[a:b]).all(axis=1)
    gap = ~seen
    velocity_scale = np.where(gap[:-1] & gap[1:], GAP_VELOCITY_FACTOR, 1.0)
    return _AxisProblem(lower, upper, soft, hot_soft, hard_lower, hard_upper, primary, size, velocity_scale)


def _solve_mode(p: _AxisProblem, mode: str, config: ReframeConfig, relax_hotspot: bool = False,
                speed_limit: bool = True) -> L1PathResult:
    settings = MODE_SETTINGS[mode]
    if relax_hotspot:
        lower, upper, soft = p.hard_lower, p.hard_upper, p.soft + p.soft_hotspot
    else:
        lower, upper, soft = p.lower, p.upper, p.soft
    return solve_l1_path(lower, upper, settings.weights, soft, max_step=config.max_speed if speed_limit else None,
                         constant=settings.constant, velocity_scale=p.velocity_scale)


def _content_loss(res: L1PathResult) -> float:
    """Mean per-frame pixels of mask / other hotspots left outside the window."""
    total = sum(float(v.sum()) for k, v in res.violations.items() if k in ("mask", "others", "hotspot"))
    n = len(res.path) if res.path is not None else 1
    return total / max(n, 1)


def _moves_linearly(primary: np.ndarray, size: np.ndarray) -> bool:
    t = np.flatnonzero(np.isfinite(primary))
    if t.size < 3:
        return False
    slope, intercept = np.polyfit(t, primary[t], 1)
    residual = np.abs(primary[t] - (slope * t + intercept)).max()
    travel = abs(slope) * (t[-1] - t[0])
    return residual <= 0.2 * float(np.median(size)) and travel > 0.1 * float(np.median(size))


def _fallback_path(p: _AxisProblem, rest: float | None) -> np.ndarray:
    """Last resort: the hotspot held over gaps, clamped to the image, box-filtered (never raises)."""
    x = p.primary.copy()
    idx = np.flatnonzero(np.isfinite(x))
    if idx.size == 0:
        x[:] = (p.hard_lower + p.hard_upper) / 2 if rest is None else rest
    else:
        x = np.interp(np.arange(x.size), idx, x[idx])
    k = 9
    if x.size > k:
        x = np.convolve(np.pad(x, k // 2, mode="edge"), np.ones(k) / k, mode="valid")
    return np.clip(x, p.hard_lower, p.hard_upper)


def plan_axis(tracks: Sequence[ObjectTrack], a: int, b: int, axis: int, size: np.ndarray, extent: int,
              config: ReframeConfig, keyframes: Sequence[Keyframe] = (),
              rest: float | None = None) -> tuple[np.ndarray, str, list[str]]:
    """Centre coordinate along ``axis`` (0 = x, 1 = y) for frames ``a .. b - 1``: (path, mode, notes)."""
    name = "xy"[axis]
    notes: list[str] = []
    problems = {m: _axis_problem(tracks, a, b, axis, size, extent, config, MODE_SETTINGS[m], keyframes, rest)
                for m in ("steady", "track", "pan")}
    mode = config.mode
    if mode == "auto":
        track = _solve_mode(problems["track"], "track", config)
        steady = _solve_mode(problems["steady"], "steady", config)
        eps = 0.01 * float(np.median(size))
        if steady.ok and (not track.ok or _content_loss(steady) <= _content_loss(track) + eps):
            return steady.path, "steady", notes
        if _moves_linearly(problems["pan"].primary, size):
            pan = _solve_mode(problems["pan"], "pan", config)
            if pan.ok and (not track.ok or _content_loss(pan) <= _content_loss(track) + eps):
                return pan.path, "pan", notes
        mode, res = "track", track
    else:
        res = _solve_mode(problems[mode], mode, config)
    if res.ok:
        return res.path, mode, notes
    if mode == "steady":
        notes.append(f"{name}: no fixed window keeps the hotspot inside in this shot; tracking instead")
        mode = "track"
        res = _solve_mode(problems[mode], mode, config)
        if res.ok:
            return res.path, mode, notes
    if config.max_speed is not None:
        notes.append(f"{name}: the speed limit of {config.max_speed:g} px/frame cannot keep the hotspot in the "
                     "window; hotspot containment made soft")
        res = _solve_mode(problems[mode], mode, config, relax_hotspot=True)
        if res.ok:
            return res.path, mode, notes
        notes.append(f"{name}: keyframes and the speed limit contradict each other; speed limit dropped")
        res = _solve_mode(problems[mode], mode, config, relax_hotspot=True, speed_limit=False)
        if res.ok:
            return res.path, mode, notes
    notes.append(f"{name}: the optimiser gave no path ({res.status}: {res.message}); smoothed hotspot used")
    return _fallback_path(problems[mode], rest), "fallback", notes


def plan_crop_path(tracks: Sequence[ObjectTrack], frame_size: tuple[int, int], config: ReframeConfig,
                   cuts: Sequence[int] = (), keyframes: Sequence[Keyframe] = ()) -> CropPath:
    """Plan the crop window of every frame (see the module docstring). ``tracks`` are in priority order."""
    if not tracks:
        raise HotspotError("reframing needs at least one object track")
    num_frames = tracks[0].num_frames
    for tr in tracks:
        if tr.num_frames != num_frames:
            raise HotspotError(f"object {tr.object_id} has {tr.num_frames} frames, object "
                               f"{tracks[0].object_id} has {num_frames}: tracks must cover the same video")
    height, width = (int(v) for v in frame_size)
    if height < 2 or width < 2:
        raise HotspotError(f"frame size must be at least 2x2, got {width}x{height}")
    by_frame: dict[int, Keyframe] = {}
    for k in keyframes:
        if not 0 <= int(k.frame) < num_frames:
            raise HotspotError(f"keyframe on frame {k.frame} is outside the video (frames 0..{num_frames - 1})")
        if not (math.isfinite(k.cx) and math.isfinite(k.cy)):
            raise HotspotError(f"keyframe on frame {k.frame} has a non-finite centre ({k.cx}, {k.cy})")
        by_frame[int(k.frame)] = k  # the latest keyframe of a frame wins

    heights = np.empty(num_frames)
    centers = np.empty((num_frames, 2))
    plans: list[ShotPlan] = []
    prev_center: tuple[float, float] | None = None
    prev_height: float | None = None
    for a, b in shot_ranges(num_frames, cuts):
        kfs = [by_frame[t] for t in sorted(by_frame) if a <= t < b]
        h, notes = plan_heights(tracks, a, b, (height, width), config, kfs, prev_height)
        heights[a:b] = h
        modes = []
        for axis, (size, extent) in enumerate(((h * config.aspect, width), (h, height))):
            rest = None if prev_center is None else prev_center[axis]
            path, mode, axis_notes = plan_axis(tracks, a, b, axis, size, extent, config, kfs, rest)
            lo, hi = size / 2 - 0.5, np.maximum(extent - 0.5 - size / 2, size / 2 - 0.5)
            centers[a:b, axis] = np.clip(path, lo, hi)  # solver tolerance must not leave the image
            modes.append(mode)
            notes += axis_notes
        plans.append(ShotPlan(a, b, modes[0], modes[1], notes))
        prev_center = (float(centers[b - 1, 0]), float(centers[b - 1, 1]))
        prev_height = float(heights[b - 1])
    return CropPath(centers, heights, float(config.aspect), (height, width), plans)
