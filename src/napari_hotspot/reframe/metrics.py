"""Reframing quality: subject containment, mask coverage and camera smoothness, plus the naive baseline.

Pure functions over windows ``(T, 4)`` = ``cx, cy, w, h`` (pixel-centre coordinates, as in
``path.py``). A pixel or hotspot is inside a window when ``cx - w/2 <= x <= cx + w/2`` (and the same
for y). Smoothness is the mean Euclidean norm of the window centre's k-th differences (velocity,
acceleration, jerk in pixels per frame^k), taken inside shots only: a cut is not camera motion.
The naive baseline centres the window on the hotspot in every frame, clamped to the image, with the
same window sizes, holding its last position while the hotspot is unknown.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from napari_hotspot.annotations.masks import CompressedMask
from napari_hotspot.reframe.shots import shot_ranges
from napari_hotspot.reframe.tracks import ObjectTrack, primary_hotspots

METRIC_KEYS = ("hotspot_in_window", "mask_coverage", "velocity", "acceleration", "jerk")


def motion_stats(centers: np.ndarray, cuts: Sequence[int] = ()) -> dict[str, float]:
    """Mean |k-th difference| of the window centre for k = 1, 2, 3 (velocity, acceleration, jerk)."""
    centers = np.asarray(centers, dtype=np.float64)
    out = {}
    for order, key in ((1, "velocity"), (2, "acceleration"), (3, "jerk")):
        norms = []
        for a, b in shot_ranges(len(centers), cuts):
            if b - a > order:
                norms.append(np.linalg.norm(np.diff(centers[a:b], n=order, axis=0), axis=1))
        values = np.concatenate(norms) if norms else np.zeros(0)
        out[key] = float(values.mean()) if values.size else 0.0
    return out


def inside_window(windows: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(T,) True where the point (x, y) lies inside the window; False where the point is NaN."""
    windows = np.asarray(windows, dtype=np.float64)
    points = np.asarray(points, dtype=np.float64)
    cx, cy, w, h = windows.T
    tol = 1e-6
    with np.errstate(invalid="ignore"):
        return ((np.abs(points[:, 0] - cx) <= w / 2 + tol) & (np.abs(points[:, 1] - cy) <= h / 2 + tol))


def mask_coverage(window: Sequence[float], mask: CompressedMask | None) -> float:
    """Share of the mask's pixels whose centres lie inside the window (NaN for an empty mask)."""
    if mask is None or mask.area == 0:
        return float("nan")
    cx, cy, w, h = (float(v) for v in window)
    c0, c1 = math.ceil(cx - w / 2 - 1e-6), math.floor(cx + w / 2 + 1e-6)
    r0, r1 = math.ceil(cy - h / 2 - 1e-6), math.floor(cy + h / 2 + 1e-6)
    y0, x0, y1, x1 = mask.bbox
    a0, a1 = max(c0, x0), min(c1 + 1, x1)
    b0, b1 = max(r0, y0), min(r1 + 1, y1)
    if a1 <= a0 or b1 <= b0:
        return 0.0
    crop = mask.crop()
    return float(crop[b0 - y0:b1 - y0, a0 - x0:a1 - x0].sum()) / mask.area


def coverage_series(windows: np.ndarray, masks: Sequence[CompressedMask | None]) -> np.ndarray:
    """(T,) mask coverage per frame, NaN where the mask is empty or unknown."""
    return np.array([mask_coverage(windows[t], masks[t]) for t in range(len(windows))], dtype=np.float64)


def mask_fits(windows: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(T,) True where the mask's extent is no larger than the window (so full coverage is possible)."""
    w, h = windows[:, 2], windows[:, 3]
    with np.errstate(invalid="ignore"):
        return ((boxes[:, 2] - boxes[:, 0]) <= w) & ((boxes[:, 3] - boxes[:, 1]) <= h)


def naive_centers(hotspots: np.ndarray, sizes: np.ndarray, frame_size: tuple[int, int]) -> np.ndarray:
    """Window centres on the hotspot in every frame, clamped so the window stays in the image.

    ``sizes`` (T, 2) are the window widths and heights. Unknown hotspots hold the previous centre
    (the next known one before the first, the image centre when none is known).
    """
    hotspots = np.asarray(hotspots, dtype=np.float64)
    h_img, w_img = frame_size
    n = len(hotspots)
    known = np.isfinite(hotspots).all(axis=1)
    centers = np.empty((n, 2))
    if not known.any():
        centers[:] = ((w_img - 1) / 2, (h_img - 1) / 2)
    else:
        idx = np.flatnonzero(known)
        held = np.maximum.accumulate(np.where(known, np.arange(n), -1))
        held[held < 0] = idx[0]
        centers[:] = hotspots[held]
    lo = sizes / 2 - 0.5
    hi = np.maximum(np.array([w_img, h_img]) - 0.5 - sizes / 2, lo)
    return np.clip(centers, lo, hi)


def path_metrics(windows: np.ndarray, tracks: Sequence[ObjectTrack], cuts: Sequence[int] = ()) -> dict:
    """The five report metrics (priority object = ``tracks[0]``) plus counts and per-object numbers."""
    windows = np.asarray(windows, dtype=np.float64)
    primary = tracks[0]
    inside = inside_window(windows, primary.hotspots)
    visible = primary.visible
    out: dict = {
        "hotspot_in_window": float(inside[visible].mean()) if visible.any() else float("nan"),
        "mask_coverage": float("nan"),
        **motion_stats(windows[:, :2], cuts),
        "frames_with_hotspot": int(visible.sum()),
    }
    if primary.masks is not None:
        cov = coverage_series(windows, primary.masks)
        has = np.isfinite(cov)
        fits = mask_fits(windows, primary.boxes) & has
        out["mask_coverage"] = float(cov[has].mean()) if has.any() else float("nan")
        out["mask_coverage_where_fits"] = float(cov[fits].mean()) if fits.any() else float("nan")
        out["frames_with_mask"] = int(has.sum())
        out["frames_mask_fits"] = int(fits.sum())
    if len(tracks) > 1:
        per = []
        for tr in tracks:
            vis = tr.visible
            row = {"object_id": tr.object_id,
                   "hotspot_in_window": float(inside_window(windows, tr.hotspots)[vis].mean()) if vis.any() else None}
            if tr.masks is not None:
                cov = coverage_series(windows, tr.masks)
                row["mask_coverage"] = float(np.nanmean(cov)) if np.isfinite(cov).any() else None
            per.append(row)
        out["objects"] = per
    return out


def reframe_report(centers: np.ndarray, heights: np.ndarray, aspect: float, frame_size: tuple[int, int],
                   tracks: Sequence[ObjectTrack], cuts: Sequence[int] = ()) -> dict:
    """Metrics of a path and, under ``baseline``, of the naive hotspot-centred path of the same sizes."""
    heights = np.asarray(heights, dtype=np.float64)
    sizes = np.column_stack([heights * aspect, heights])
    windows = np.column_stack([centers, sizes])
    report = path_metrics(windows, tracks, cuts)
    base_windows = np.column_stack([naive_centers(primary_hotspots(tracks), sizes, frame_size), sizes])
    report["baseline"] = path_metrics(base_windows, tracks, cuts)
    report["baseline"].pop("objects", None)
    for key in ("velocity", "acceleration", "jerk"):
        base = report["baseline"][key]
        report[f"{key}_ratio"] = report[key] / base if base > 0 else (0.0 if report[key] == 0 else float("inf"))
    return report
