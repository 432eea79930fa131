"""DAVIS video-segmentation metrics: region similarity J, boundary F and their per-sequence statistics.

Definitions follow the DAVIS benchmark (Perazzi et al. 2016, Pont-Tuset et al. 2017) and its public
evaluation code (davis2017-evaluation, ``davis2017/metrics.py`` and ``utils.db_statistics``):

* J is the intersection-over-union of the binary masks; when both masks are empty J = 1.
* F is the F-measure of boundary precision and recall. Boundaries are the one-pixel-wide maps of
  :func:`seg2bmap`; a boundary pixel counts as matched when it lies within ``bound_pix`` pixels
  (``bound_pix = ceil(bound_th * hypot(H, W))`` for ``bound_th < 1``) of the other boundary, tested by
  dilating the other boundary with a disk of that radius. Empty boundaries: prediction empty and GT
  not -> precision 1, recall 0 (F = 0); GT empty and prediction not -> F = 0; both empty -> F = 1.
* Sequence statistics are taken over the frames *without* the first and the last frame (the first is
  the given annotation in the semi-supervised protocol): mean, recall = fraction of frames > 0.5, and
  decay = mean of the first bin minus mean of the last of 4 bins. The bins are the official ones:
  ``ids = round(linspace(1, N, 5)) - 1`` and ``bin_i = values[ids[i] : ids[i+1] + 1]`` (neighbouring
  bins share their edge frame). This is *not* ``np.array_split``; for N <= 256 frames it equals the
  official result exactly (the official code casts the indices to uint8, which wraps above 256 frames;
  we keep full-width integers there).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from napari_hotspot.errors import AnnotationError

DEFAULT_BOUND_TH = 0.008


def _as_bool_mask(mask, name: str) -> np.ndarray:
    array = np.asarray(mask)
    if array.ndim != 2:
        raise AnnotationError(f"{name} must be a 2-D mask (H, W); got an array of shape {array.shape}")
    return array.astype(bool)


def _apply_void(pred_mask: np.ndarray, gt_mask: np.ndarray, void) -> tuple[np.ndarray, np.ndarray]:
    if void is None:
        return pred_mask, gt_mask
    void_mask = _as_bool_mask(void, "void mask")
    if void_mask.shape != gt_mask.shape:
        raise AnnotationError(f"void mask shape {void_mask.shape} differs from ground-truth shape {gt_mask.shape}")
    return pred_mask & ~void_mask, gt_mask & ~void_mask


def _check_pair(pred, gt) -> tuple[np.ndarray, np.ndarray]:
    pred_mask = _as_bool_mask(pred, "prediction")
    gt_mask = _as_bool_mask(gt, "ground truth")
    if pred_mask.shape != gt_mask.shape:
        raise AnnotationError(
            f"prediction shape {pred_mask.shape} differs from ground-truth shape {gt_mask.shape}; "
            "resize the prediction to the annotation resolution first"
        )
    return pred_mask, gt_mask


def jaccard(pred, gt, void=None) -> float:
    """Region similarity J: |pred & gt| / |pred | gt| (1.0 when both are empty). ``void`` pixels are ignored."""
    pred_mask, gt_mask = _check_pair(pred, gt)
    pred_mask, gt_mask = _apply_void(pred_mask, gt_mask, void)
    union = np.count_nonzero(pred_mask | gt_mask)
    if union == 0:
        return 1.0
    return float(np.count_nonzero(pred_mask & gt_mask) / union)


def seg2bmap(mask) -> np.ndarray:
    """One-pixel-wide boundary map of a binary mask (D. Martin's ``seg2bmap``, same size as the mask).

    A pixel is a boundary pixel when it differs from its right, lower or lower-right neighbour (pixels
    outside the image count as background). In the last row only the right neighbour is compared, in
    the last column only the lower one, and the bottom-right pixel is never a boundary, so the image
    border itself is not drawn as an object boundary. The boundary sits half a pixel towards the origin.
    """
    seg = _as_bool_mask(mask, "mask")
    right = np.zeros_like(seg)
    below = np.zeros_like(seg)
    below_right = np.zeros_like(seg)
    right[:, :-1] = seg[:, 1:]
    below[:-1, :] = seg[1:, :]
    below_right[:-1, :-1] = seg[1:, 1:]
    boundary = (seg != right) | (seg != below) | (seg != below_right)
    boundary[-1, :] = seg[-1, :] != right[-1, :]
    boundary[:, -1] = seg[:, -1] != below[:, -1]
    boundary[-1, -1] = False
    return boundary


def boundary_tolerance(shape: tuple[int, int], bound_th: float = DEFAULT_BOUND_TH) -> int:
    """Matching radius in pixels: ``bound_th`` itself when >= 1, else ceil(bound_th * image diagonal)."""
    if bound_th <= 0:
        raise AnnotationError(f"bound_th must be positive; got {bound_th}")
    if bound_th >= 1:
        return int(math.ceil(bound_th))
    return int(math.ceil(bound_th * math.hypot(shape[0], shape[1])))


def disk_kernel(radius: int) -> np.ndarray:
    """uint8 disk structuring element of the given radius: offsets with dx^2 + dy^2 <= radius^2."""
    offsets = np.arange(-radius, radius + 1)
    return ((offsets[:, None] ** 2 + offsets[None, :] ** 2) <= radius**2).astype(np.uint8)


def boundary_precision_recall(pred, gt, bound_th: float = DEFAULT_BOUND_TH, void=None) -> tuple[float, float]:
    """Boundary precision and recall of ``pred`` against ``gt`` with the DAVIS empty-boundary conventions."""
    pred_mask, gt_mask = _check_pair(pred, gt)
    pred_mask, gt_mask = _apply_void(pred_mask, gt_mask, void)
    kernel = disk_kernel(boundary_tolerance(gt_mask.shape, bound_th))
    pred_boundary = seg2bmap(pred_mask)
    gt_boundary = seg2bmap(gt_mask)
    n_pred = int(np.count_nonzero(pred_boundary))
    n_gt = int(np.count_nonzero(gt_boundary))
    if n_pred == 0 and n_gt == 0:
        return 1.0, 1.0
    if n_pred == 0:
        return 1.0, 0.0
    if n_gt == 0:
        return 0.0, 1.0
    pred_near = cv2.dilate(pred_boundary.astype(np.uint8), kernel).astype(bool)
    gt_near = cv2.dilate(gt_boundary.astype(np.uint8), kernel).astype(bool)
    precision = np.count_nonzero(pred_boundary & gt_near) / n_pred
    recall = np.count_nonzero(gt_boundary & pred_near) / n_gt
    return float(precision), float(recall)


def boundary_f(pred, gt, bound_th: float = DEFAULT_BOUND_TH, void=None) -> float:
    """Boundary F-measure: 2PR / (P + R) with the tolerance of :func:`boundary_tolerance` (0 when P + R = 0)."""
    precision, recall = boundary_precision_recall(pred, gt, bound_th=bound_th, void=void)
    if precision + recall == 0:
        return 0.0
    return float(2 * precision * recall / (precision + recall))


def _check_sequences(pred_masks, gt_masks) -> tuple[list, list]:
    preds, gts = list(pred_masks), list(gt_masks)
    if len(preds) != len(gts):
        raise AnnotationError(
            f"the prediction has {len(preds)} frames but the ground truth has {len(gts)}; "
            "give one prediction per annotated frame (an empty mask where the object is absent)"
        )
    return preds, gts


def per_frame_j(pred_masks, gt_masks) -> np.ndarray:
    """J of every frame pair (all frames, first and last included), as a float array."""
    preds, gts = _check_sequences(pred_masks, gt_masks)
    return np.array([jaccard(p, g) for p, g in zip(preds, gts)], dtype=float)


def per_frame_f(pred_masks, gt_masks, bound_th: float = DEFAULT_BOUND_TH) -> np.ndarray:
    """Boundary F of every frame pair (all frames, first and last included), as a float array."""
    preds, gts = _check_sequences(pred_masks, gt_masks)
    return np.array([boundary_f(p, g, bound_th=bound_th) for p, g in zip(preds, gts)], dtype=float)


def decay_bins(n_values: int) -> list[slice]:
    """The official 4 decay bins over ``n_values`` per-frame values (edges shared, see module docstring)."""
    if n_values < 1:
        raise AnnotationError("decay needs at least one per-frame value; got none")
    edges = (np.round(np.linspace(1, n_values, 5) + 1e-10) - 1).astype(np.int64)
    return [slice(int(edges[i]), int(edges[i + 1]) + 1) for i in range(4)]


def sequence_statistics(values: Sequence[float]) -> tuple[float, float, float]:
    """(mean, recall, decay) of per-frame scores that are already restricted to the evaluated frames.

    NaN scores are skipped by mean and decay and count as failures for recall, as in the official code.
    """
    scores = np.asarray(values, dtype=float).ravel()
    if scores.size == 0:
        raise AnnotationError("sequence statistics need at least one evaluated frame; got none")
    mean = float(np.nanmean(scores)) if np.any(np.isfinite(scores)) else float("nan")
    with np.errstate(invalid="ignore"):
        recall = float(np.mean(scores > 0.5))
    bins = [scores[b] for b in decay_bins(scores.size)]
    first, last = bins[0], bins[3]
    if np.any(np.isfinite(first)) and np.any(np.isfinite(last)):
        decay = float(np.nanmean(first) - np.nanmean(last))
    else:
        decay = float("nan")
    return mean, recall, decay


def evaluated_frames(n_frames: int) -> slice:
    """The frames DAVIS scores: all but the first and the last (needs at least 3 frames)."""
    if n_frames < 3:
        raise AnnotationError(
            f"a DAVIS sequence needs at least 3 frames (the first and last are not scored); got {n_frames}"
        )
    return slice(1, n_frames - 1)


def sequence_scores(pred_masks, gt_masks, bound_th: float = DEFAULT_BOUND_TH) -> dict[str, float]:
    """DAVIS statistics of one object over one sequence of binary masks (lists or (T, H, W) arrays).

    The first and last frames are excluded, as in the official semi-supervised evaluation.
    Returns ``J_mean, J_recall, J_decay, F_mean, F_recall, F_decay`` and ``n_frames`` (frames scored).
    """
    preds, gts = _check_sequences(pred_masks, gt_masks)
    window = evaluated_frames(len(gts))
    j_values = per_frame_j(preds[window], gts[window])
    f_values = per_frame_f(preds[window], gts[window], bound_th=bound_th)
    return scores_from_per_frame(j_values, f_values)


def scores_from_per_frame(j_values, f_values) -> dict[str, float]:
    """Statistics dict from per-frame J and F that are already restricted to the evaluated frames."""
    j_mean, j_recall, j_decay = sequence_statistics(j_values)
    f_mean, f_recall, f_decay = sequence_statistics(f_values)
    return {
        "J_mean": j_mean,
        "J_recall": j_recall,
        "J_decay": j_decay,
        "F_mean": f_mean,
        "F_recall": f_recall,
        "F_decay": f_decay,
        "n_frames": int(np.asarray(j_values).size),
    }


def object_ids(label_map) -> list[int]:
    """Object ids of an indexed label map: its non-zero labels, sorted (the DAVIS void label 255 excluded)."""
    labels = np.unique(np.asarray(label_map))
    return [int(v) for v in labels if v != 0 and v != 255]


def multi_object_scores(pred_labels, gt_labels, ids: Sequence[int] | None = None,
                        bound_th: float = DEFAULT_BOUND_TH) -> dict[int, dict[str, float]]:
    """Per-object DAVIS statistics of indexed label sequences; each object id is scored on its own.

    ``ids`` defaults to the objects of the first ground-truth frame (what the official code does).
    """
    preds, gts = _check_sequences(pred_labels, gt_labels)
    if not gts:
        raise AnnotationError("the ground-truth sequence is empty")
    if ids is None:
        ids = object_ids(gts[0])
    if not ids:
        raise AnnotationError("the first ground-truth frame contains no object (only label 0/255)")
    results = {}
    for oid in ids:
        results[int(oid)] = sequence_scores(
            [np.asarray(p) == oid for p in preds], [np.asarray(g) == oid for g in gts], bound_th=bound_th
        )
    return results
