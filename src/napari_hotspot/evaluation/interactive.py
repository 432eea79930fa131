"""Interactive-segmentation protocol: a simulated annotator and the number-of-clicks (NoC) measure.

The simulated annotator (Xu et al. 2016 style) looks at the error of the current prediction, takes the
largest connected error region (misses = GT not predicted, false alarms = predicted not GT; 8-connected)
and clicks at its most interior pixel, the maximum of the Euclidean distance transform of that region
(pixels outside the image count as outside the region). The click is positive on a miss and negative
on a false alarm. Ties: between a miss and a false alarm of equal area the miss wins; between regions
of one kind, the one whose first pixel comes first in raster order; within a region, the raster-first
maximum of the distance transform.

NoC@t is the number of clicks after which IoU >= t first holds; when ``max_clicks`` clicks never get
there, NoC@t = ``max_clicks`` and the threshold is reported as failed (the usual convention).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import ndimage

from napari_hotspot.errors import AnnotationError
from napari_hotspot.evaluation.davis import jaccard

SegmentFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def _largest_region(error: np.ndarray) -> tuple[int, np.ndarray | None]:
    """(area, region mask) of the largest 8-connected region of ``error`` ((0, None) when empty)."""
    labels, count = ndimage.label(error, structure=_EIGHT_CONNECTED)
    if count == 0:
        return 0, None
    areas = np.bincount(labels.ravel())[1:]
    best = int(np.argmax(areas)) + 1  # argmax returns the lowest label, i.e. the raster-first region
    region = labels == best
    return int(areas[best - 1]), region


def next_click(pred, gt) -> tuple[int, int, bool] | None:
    """Next simulated click ``(x, y, is_positive)`` for ``pred`` against ``gt``; None when they agree."""
    pred_mask = np.asarray(pred).astype(bool)
    gt_mask = np.asarray(gt).astype(bool)
    if pred_mask.ndim != 2 or pred_mask.shape != gt_mask.shape:
        raise AnnotationError(
            f"prediction {pred_mask.shape} and ground truth {gt_mask.shape} must be 2-D masks of the same shape"
        )
    miss_area, miss_region = _largest_region(gt_mask & ~pred_mask)
    alarm_area, alarm_region = _largest_region(pred_mask & ~gt_mask)
    if miss_region is None and alarm_region is None:
        return None
    if alarm_region is None or (miss_region is not None and miss_area >= alarm_area):
        region, positive = miss_region, True
    else:
        region, positive = alarm_region, False
    # Pad so that the image border counts as the region's edge.
    depth = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
    row, col = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return int(col), int(row), positive


def number_of_clicks(segment_fn: SegmentFn, gt, thresholds: Sequence[float] = (0.85, 0.90),
                     max_clicks: int = 20) -> dict:
    """Run the simulated annotator against ``segment_fn(points_xy (N, 2), labels (N,) bool) -> mask``.

    Clicking stops once every threshold is reached or after ``max_clicks``. Returns
    ``{"NoC@0.85": n, "failed@0.85": bool, ..., "ious": [IoU after each click],
    "clicks": [(x, y, is_positive), ...]}``.
    """
    gt_mask = np.asarray(gt).astype(bool)
    if gt_mask.ndim != 2:
        raise AnnotationError(f"the ground truth must be a 2-D mask; got shape {gt_mask.shape}")
    if not gt_mask.any():
        raise AnnotationError("the ground-truth mask is empty: there is no object to click on")
    if max_clicks < 1:
        raise AnnotationError(f"max_clicks must be at least 1; got {max_clicks}")
    thresholds = tuple(float(t) for t in thresholds)
    pred = np.zeros_like(gt_mask)
    clicks: list[tuple[int, int, bool]] = []
    ious: list[float] = []
    reached: dict[float, int] = {}
    while len(clicks) < max_clicks and len(reached) < len(thresholds):
        click = next_click(pred, gt_mask)
        if click is None:  # perfect mask already: every threshold is reached at the current count
            break
        clicks.append(click)
        points = np.array([(x, y) for x, y, _ in clicks], dtype=float)
        labels = np.array([positive for _, _, positive in clicks], dtype=bool)
        pred = np.asarray(segment_fn(points, labels)).astype(bool)
        if pred.shape != gt_mask.shape:
            raise AnnotationError(
                f"segment_fn returned a mask of shape {pred.shape}; expected the ground-truth shape {gt_mask.shape}"
            )
        ious.append(jaccard(pred, gt_mask))
        for t in thresholds:
            if t not in reached and ious[-1] >= t:
                reached[t] = len(clicks)
    result: dict = {"ious": ious, "clicks": clicks}
    for t in thresholds:
        result[f"NoC@{t:.2f}"] = reached.get(t, max_clicks)
        result[f"failed@{t:.2f}"] = t not in reached
    return result
