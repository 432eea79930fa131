"""Hotspot metrics: predicted hotspot tracks against one or several annotators, and annotator agreement.

Conventions (all coordinates are (x, y) pixels, x = column, y = row):

* A track is a (T, 2) array, one point per frame; a NaN row means "no hotspot in this frame".
  Several annotators are an (A, T, 2) array (NaN rows where an annotator did not mark a frame).
* The object size used for normalisation is, by default, the diagonal of the ground-truth mask's
  bounding box, ``hypot(x_max - x_min + 1, y_max - y_min + 1)`` (``size_mode="diagonal"``);
  ``size_mode="sqrt_area"`` uses the square root of the mask area instead.
* PCK@a is the fraction of frames with ground truth whose error is <= a * object size; a frame with
  ground truth but no prediction counts as a miss. Mean distances average over frames that have both.
  Frames whose GT mask is empty (no object size) are left out of normalised distances and PCK.
* The consensus of several annotators is their geometric median (Weiszfeld's algorithm with the
  Vardi-Zhang step when the estimate lands on a data point).
* Temporal jitter is the mean norm of the second difference p[t+1] - 2 p[t] + p[t-1] over all
  consecutive triples of predicted points (pixels per frame^2): 0 for constant or linear motion.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from napari_hotspot.errors import AnnotationError

SIZE_MODES = ("diagonal", "sqrt_area")
DEFAULT_PCK_THRESHOLDS = (0.05, 0.10)


def _as_points(points, name: str) -> np.ndarray:
    array = np.asarray(points, dtype=float)
    if array.ndim == 1 and array.shape[0] == 2:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != 2:
        raise AnnotationError(f"{name} must be an (N, 2) array of (x, y) points; got shape {array.shape}")
    return array


def _as_track(track, name: str) -> np.ndarray:
    array = np.asarray(track, dtype=float)
    if array.ndim != 2 or array.shape[1] != 2:
        raise AnnotationError(f"{name} must be a (T, 2) track of (x, y) points; got shape {array.shape}")
    return array


def _as_annotator_tracks(tracks, name: str) -> np.ndarray:
    array = np.asarray(tracks, dtype=float)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or array.shape[2] != 2:
        raise AnnotationError(
            f"{name} must be a (T, 2) track or an (A, T, 2) stack of annotator tracks; got shape {array.shape}"
        )
    return array


def pck_key(threshold: float) -> str:
    """Column name of PCK at ``threshold``: 0.05 -> 'pck05', 0.10 -> 'pck10'."""
    return f"pck{int(round(threshold * 100)):02d}"


def object_size(mask, mode: str = "diagonal") -> float:
    """Size of the object in a binary mask: bounding-box diagonal (default) or sqrt(area); NaN if empty."""
    if mode not in SIZE_MODES:
        raise AnnotationError(f"size mode must be one of {SIZE_MODES}; got {mode!r}")
    region = np.asarray(mask).astype(bool)
    if region.ndim != 2:
        raise AnnotationError(f"the object mask must be 2-D (H, W); got shape {region.shape}")
    if not region.any():
        return float("nan")
    if mode == "sqrt_area":
        return float(math.sqrt(np.count_nonzero(region)))
    rows = np.flatnonzero(region.any(axis=1))
    cols = np.flatnonzero(region.any(axis=0))
    return float(math.hypot(cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1))


def point_distance(p, q) -> float:
    """Euclidean distance between two (x, y) points (NaN when either is missing)."""
    a, b = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    return float(np.hypot(*(a - b)))


def geometric_median(points, tol: float = 1e-7, max_iter: int = 1000) -> np.ndarray:
    """Point minimising the sum of Euclidean distances to ``points`` (N, 2); NaN rows are ignored.

    Weiszfeld's fixed-point iteration started at the centroid. When the estimate coincides with data
    points (multiplicity k), the Vardi-Zhang rule either stops there (the pull of the other points is
    <= k, which is the optimality condition) or steps away, so the iteration never divides by zero.
    """
    pts = _as_points(points, "points")
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    if len(pts) == 0:
        raise AnnotationError("the geometric median needs at least one finite point; got none")
    if len(pts) == 1:
        return pts[0].copy()
    scale = max(float(np.ptp(pts, axis=0).max()), 1.0)
    estimate = pts.mean(axis=0)
    for _ in range(max_iter):
        offsets = pts - estimate
        dists = np.hypot(offsets[:, 0], offsets[:, 1])
        coincide = dists <= 1e-12 * scale
        others = ~coincide
        if not others.any():
            return estimate
        weights = 1.0 / dists[others]
        weiszfeld = (pts[others] * weights[:, None]).sum(axis=0) / weights.sum()
        multiplicity = int(coincide.sum())
        if multiplicity == 0:
            new_estimate = weiszfeld
        else:
            pull = np.hypot(*(offsets[others] * weights[:, None]).sum(axis=0))
            if pull <= multiplicity:
                return estimate
            step = multiplicity / pull
            new_estimate = (1 - step) * weiszfeld + step * estimate
        if np.hypot(*(new_estimate - estimate)) <= tol * scale:
            return _snap_to_optimal_vertex(pts, new_estimate)
        estimate = new_estimate
    return _snap_to_optimal_vertex(pts, estimate)


def _snap_to_optimal_vertex(pts: np.ndarray, estimate: np.ndarray) -> np.ndarray:
    """Return the data point nearest ``estimate`` if it satisfies the vertex optimality condition.

    Weiszfeld approaches a data-point optimum only linearly; the exact test (pull of the other points
    <= multiplicity of the vertex) lets us return the exact vertex instead of a point 1e-6 away.
    """
    nearest = pts[int(np.argmin(np.hypot(*(pts - estimate).T)))]
    offsets = pts - nearest
    dists = np.hypot(offsets[:, 0], offsets[:, 1])
    others = dists > 0
    multiplicity = int((~others).sum())
    if not others.any():
        return nearest.copy()
    pull = np.hypot(*(offsets[others] / dists[others][:, None]).sum(axis=0))
    # Strict: with pull == multiplicity (two points, collinear ties) the whole segment is optimal; keep the estimate.
    return nearest.copy() if pull < multiplicity else estimate


def consensus_hotspot(points) -> tuple[float, float]:
    """Consensus of several annotators' hotspots in one frame: their geometric median (x, y)."""
    x, y = geometric_median(points)
    return float(x), float(y)


def temporal_jitter(track) -> float:
    """Mean norm of second differences of a (T, 2) track over consecutive finite triples (NaN if none)."""
    pts = _as_track(track, "track")
    if len(pts) < 3:
        return float("nan")
    second = pts[2:] - 2 * pts[1:-1] + pts[:-2]
    valid = np.all(np.isfinite(second), axis=1)
    if not valid.any():
        return float("nan")
    return float(np.mean(np.hypot(second[valid, 0], second[valid, 1])))


def point_inside(mask, point) -> bool:
    """Whether (x, y), rounded to the nearest pixel, lies on the mask (False off the image or if NaN)."""
    region = np.asarray(mask)
    x, y = np.asarray(point, dtype=float)
    if not (np.isfinite(x) and np.isfinite(y)):
        return False
    col, row = int(round(x)), int(round(y))
    if not (0 <= row < region.shape[0] and 0 <= col < region.shape[1]):
        return False
    return bool(region[row, col])


def _object_sizes(gt_masks, n_frames: int, size_mode: str) -> np.ndarray | None:
    if gt_masks is None:
        return None
    masks = list(gt_masks)
    if len(masks) != n_frames:
        raise AnnotationError(f"got {len(masks)} ground-truth masks for a track of {n_frames} frames")
    return np.array([object_size(m, size_mode) for m in masks], dtype=float)


def _nanmean(values) -> float:
    array = np.asarray(values, dtype=float)
    finite = array[np.isfinite(array)]
    return float(finite.mean()) if finite.size else float("nan")


def hotspot_scores(pred_track, gt_tracks, gt_masks=None, size_mode: str = "diagonal",
                   pck_thresholds: Sequence[float] = DEFAULT_PCK_THRESHOLDS) -> dict[str, float]:
    """Score a predicted hotspot track (T, 2) against annotator tracks ((T, 2) or (A, T, 2)).

    Returns (NaN where undefined; normalised values and PCK need ``gt_masks``, (T, H, W)):
      hs_dist_px / hs_dist_norm: mean distance to the *nearest* annotator (pixels / object sizes),
      hs_dist_consensus_px / hs_dist_consensus_norm: same to the annotators' geometric median,
      hs_pckXX / hs_pckXX_consensus: PCK at each threshold (nearest annotator / consensus),
      hs_inside_rate: fraction of predicted hotspots that fall on the GT mask,
      hs_jitter_px: temporal jitter of the prediction, hs_n_frames: frames with ground truth,
      hs_n_missing: of those, frames without a prediction.
    """
    pred = _as_track(pred_track, "predicted track")
    annotators = _as_annotator_tracks(gt_tracks, "ground-truth hotspots")
    n_frames = pred.shape[0]
    if annotators.shape[1] != n_frames:
        raise AnnotationError(
            f"the predicted track has {n_frames} frames but the ground-truth hotspots have {annotators.shape[1]}"
        )
    sizes = _object_sizes(gt_masks, n_frames, size_mode)
    masks = None if gt_masks is None else list(gt_masks)

    nearest = np.full(n_frames, np.nan)
    to_consensus = np.full(n_frames, np.nan)
    has_gt = np.zeros(n_frames, dtype=bool)
    for t in range(n_frames):
        marks = annotators[:, t, :]
        marks = marks[np.all(np.isfinite(marks), axis=1)]
        if len(marks) == 0:
            continue
        has_gt[t] = True
        if not np.all(np.isfinite(pred[t])):
            continue
        nearest[t] = float(np.min(np.hypot(*(marks - pred[t]).T)))
        to_consensus[t] = point_distance(pred[t], geometric_median(marks))

    has_pred = np.all(np.isfinite(pred), axis=1)
    scores: dict[str, float] = {
        "hs_dist_px": _nanmean(nearest),
        "hs_dist_consensus_px": _nanmean(to_consensus),
        "hs_dist_norm": float("nan"),
        "hs_dist_consensus_norm": float("nan"),
    }
    scored = has_gt & (np.isfinite(sizes) if sizes is not None else True)
    for threshold in pck_thresholds:
        scores[f"hs_{pck_key(threshold)}"] = float("nan")
        scores[f"hs_{pck_key(threshold)}_consensus"] = float("nan")
    if sizes is not None:
        scores["hs_dist_norm"] = _nanmean(nearest / sizes)
        scores["hs_dist_consensus_norm"] = _nanmean(to_consensus / sizes)
        if scored.any():
            with np.errstate(invalid="ignore"):
                for threshold in pck_thresholds:
                    limit = threshold * sizes[scored]
                    # NaN distance (missing prediction) compares False: counted as a miss.
                    scores[f"hs_{pck_key(threshold)}"] = float(np.mean(nearest[scored] <= limit))
                    scores[f"hs_{pck_key(threshold)}_consensus"] = float(np.mean(to_consensus[scored] <= limit))
    if masks is not None and has_pred.any():
        inside = [point_inside(masks[t], pred[t]) for t in range(n_frames) if has_pred[t]]
        scores["hs_inside_rate"] = float(np.mean(inside))
    else:
        scores["hs_inside_rate"] = float("nan")
    scores["hs_jitter_px"] = temporal_jitter(pred)
    scores["hs_n_frames"] = int(has_gt.sum())
    scores["hs_n_missing"] = int((has_gt & ~has_pred).sum())
    return scores


def frame_agreement(points, object_size: float | None = None, pck_threshold: float = 0.10,
                    outlier_threshold: float = 0.20) -> dict:
    """Agreement of several annotators' hotspots (A, 2) in one frame (NaN rows = annotator absent).

    Returns ``consensus`` (x, y), ``mean_pairwise_px`` (mean distance over annotator pairs),
    ``spread_px`` (mean distance to the consensus) and, when ``object_size`` is given,
    ``mean_pairwise_norm``, ``pck`` (fraction of pairs closer than ``pck_threshold * object_size``) and
    ``outliers``: per annotator, True when its distance to the consensus exceeds
    ``outlier_threshold * object_size``. The geometric median ignores a minority of far points (50%
    breakdown), so the consensus is not dragged towards the outlier it is meant to expose. Flags need
    >= 3 annotators (with two nobody can be singled out). Absent annotators get ``None``.
    """
    pts = _as_points(points, "annotator points")
    present = np.all(np.isfinite(pts), axis=1)
    marks = pts[present]
    if len(marks) == 0:
        raise AnnotationError("frame agreement needs at least one annotated point; got none")
    consensus = geometric_median(marks)
    pair_dists = [point_distance(a, b) for a, b in itertools.combinations(marks, 2)]
    result: dict = {
        "n_annotators": int(len(marks)),
        "consensus": (float(consensus[0]), float(consensus[1])),
        "mean_pairwise_px": float(np.mean(pair_dists)) if pair_dists else float("nan"),
        "spread_px": float(np.mean(np.hypot(*(marks - consensus).T))),
        "mean_pairwise_norm": float("nan"),
        "pck": float("nan"),
        "outliers": [None if not p else False for p in present],
    }
    if object_size is None or not np.isfinite(object_size) or object_size <= 0:
        return result
    if pair_dists:
        result["mean_pairwise_norm"] = float(np.mean(pair_dists) / object_size)
        result["pck"] = float(np.mean(np.asarray(pair_dists) <= pck_threshold * object_size))
    if len(marks) >= 3:
        for k, idx in enumerate(np.flatnonzero(present)):
            distance = point_distance(marks[k], consensus)
            result["outliers"][idx] = bool(distance > outlier_threshold * object_size)
    return result


def annotator_agreement(gt_tracks, gt_masks=None, size_mode: str = "diagonal", pck_threshold: float = 0.10,
                        outlier_threshold: float = 0.20) -> dict:
    """Agreement of annotator tracks (A, T, 2) over a sequence (frames with >= 2 annotators are used).

    Returns frame-averaged ``mean_pairwise_px``, ``spread_px``, ``mean_pairwise_norm``, ``pck`` (see
    :func:`frame_agreement`), ``outlier_rate`` per annotator (fraction of its marked frames flagged),
    ``consensus_track`` (T, 2; NaN where nobody marked) and ``n_frames`` (frames with >= 2 annotators).
    """
    annotators = _as_annotator_tracks(gt_tracks, "annotator tracks")
    n_annotators, n_frames = annotators.shape[:2]
    sizes = _object_sizes(gt_masks, n_frames, size_mode)
    consensus_track = np.full((n_frames, 2), np.nan)
    pairwise, spread, pairwise_norm, pck = [], [], [], []
    flagged = np.zeros(n_annotators)
    judged = np.zeros(n_annotators)
    for t in range(n_frames):
        marks = annotators[:, t, :]
        present = np.all(np.isfinite(marks), axis=1)
        if not present.any():
            continue
        size = None if sizes is None else sizes[t]
        frame = frame_agreement(marks, size, pck_threshold, outlier_threshold)
        consensus_track[t] = frame["consensus"]
        if frame["n_annotators"] < 2:
            continue
        pairwise.append(frame["mean_pairwise_px"])
        spread.append(frame["spread_px"])
        pairwise_norm.append(frame["mean_pairwise_norm"])
        pck.append(frame["pck"])
        for a, flag in enumerate(frame["outliers"]):
            if flag is not None and frame["n_annotators"] >= 3 and size is not None and np.isfinite(size):
                judged[a] += 1
                flagged[a] += bool(flag)
    with np.errstate(invalid="ignore", divide="ignore"):
        outlier_rate = np.where(judged > 0, flagged / np.maximum(judged, 1), np.nan)
    return {
        "mean_pairwise_px": _nanmean(pairwise),
        "spread_px": _nanmean(spread),
        "mean_pairwise_norm": _nanmean(pairwise_norm),
        "pck": _nanmean(pck),
        "outlier_rate": [float(v) for v in outlier_rate],
        "consensus_track": consensus_track,
        "n_frames": len(pairwise),
    }
