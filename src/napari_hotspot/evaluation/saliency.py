"""Saliency metrics (AUC-Judd, shuffled AUC, NSS, CC, SIM, KLD) and Gaussian maps made from hotspots.

Definitions follow the MIT saliency benchmark's evaluation code (Bylinskii et al., ``code_forMetrics``):

* AUC-Judd: thresholds are the saliency values at the fixations; TP rate = fixations above threshold /
  fixations, FP rate = other pixels above threshold / non-fixated pixels; trapezoidal area. The map is
  min-max normalised and, with ``jitter=True`` (the MIT default), a tiny uniform noise (< 1e-7) breaks
  ties; here the noise comes from a seeded generator so the score is reproducible.
* sAUC: negatives are saliency values at fixations of *other* images/frames (``other_map``); for each
  of ``n_splits`` random draws of as many negatives as fixations, thresholds sweep 0..max in
  ``step_size`` steps; the score is the mean area.
* NSS: mean of the standardised map (zero mean, unit sample std, ddof=1 as MATLAB ``std``) at fixations.
* CC: Pearson correlation of the two maps. SIM: histogram intersection of the min-max normalised maps
  rescaled to sum 1. KLD: sum q * log(eps + q / (p + eps)) with p the saliency map and q the fixation
  density, both rescaled to sum 1, eps = 2.22e-16 (MATLAB ``eps``).

Maps of a different size than the fixation map are resized with bilinear interpolation (MATLAB's
``imresize`` default is bicubic; the difference is negligible for smooth maps). A metric that is
undefined for the input (no fixations, a constant map for NSS/CC) returns NaN.
"""

from __future__ import annotations

import cv2
import numpy as np

from napari_hotspot.errors import AnnotationError

MATLAB_EPS = float(np.finfo(float).eps)
# numpy >= 2 renamed trapz to trapezoid; the project still allows numpy 1.24.
_trapezoid = getattr(np, "trapezoid", None) or np.trapz


def _as_map(values, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 2:
        raise AnnotationError(f"{name} must be a 2-D map (H, W); got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise AnnotationError(f"{name} contains NaN or infinite values")
    return array


def _fit_to(saliency_map: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if saliency_map.shape == tuple(shape):
        return saliency_map
    return cv2.resize(saliency_map, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def _min_max(values: np.ndarray) -> np.ndarray:
    low, high = values.min(), values.max()
    if high == low:
        return np.zeros_like(values)
    return (values - low) / (high - low)


def fixation_map_from_points(points, shape: tuple[int, int]) -> np.ndarray:
    """Binary fixation map of ``shape`` with the (x, y) points (rounded) set; NaN points are skipped."""
    height, width = int(shape[0]), int(shape[1])
    fixations = np.zeros((height, width), dtype=bool)
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    for x, y in pts:
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        col, row = int(round(x)), int(round(y))
        if not (0 <= row < height and 0 <= col < width):
            raise AnnotationError(f"fixation ({x:g}, {y:g}) lies outside the {width}x{height} image")
        fixations[row, col] = True
    return fixations


def hotspot_map(points, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Saliency map from hotspots: a sum of isotropic Gaussians (std ``sigma`` px) at the (x, y) points.

    The result is float32 scaled to a maximum of 1 (all zeros when there is no finite point), so a
    hotspot track can be scored frame by frame with the saliency metrics.
    """
    if not sigma > 0:
        raise AnnotationError(f"the Gaussian sigma must be positive; got {sigma}")
    height, width = int(shape[0]), int(shape[1])
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    rows = np.arange(height, dtype=float)
    cols = np.arange(width, dtype=float)
    saliency = np.zeros((height, width), dtype=float)
    for x, y in pts:
        # Separable Gaussian: outer product of the row and column profiles.
        saliency += np.outer(np.exp(-((rows - y) ** 2) / (2 * sigma**2)), np.exp(-((cols - x) ** 2) / (2 * sigma**2)))
    peak = saliency.max()
    if peak > 0:
        saliency /= peak
    return saliency.astype(np.float32)


def auc_judd(saliency_map, fixation_map, jitter: bool = True, seed: int = 0) -> float:
    """AUC-Judd of a saliency map against a binary fixation map (NaN when there is no fixation)."""
    fixations = _as_map(fixation_map, "fixation map") > 0
    if not fixations.any():
        return float("nan")
    saliency = _fit_to(_as_map(saliency_map, "saliency map"), fixations.shape)
    if jitter:
        saliency = saliency + np.random.default_rng(seed).random(saliency.shape) / 1e7
    saliency = _min_max(saliency).ravel()
    at_fixations = np.sort(saliency[fixations.ravel()])[::-1]
    n_fix, n_pixels = at_fixations.size, saliency.size
    if n_pixels == n_fix:
        return float("nan")
    ordered = np.sort(saliency)
    # Pixels with value >= each threshold, counted by binary search in the sorted map.
    above = n_pixels - np.searchsorted(ordered, at_fixations, side="left")
    tp = np.concatenate([[0.0], np.arange(1, n_fix + 1) / n_fix, [1.0]])
    fp = np.concatenate([[0.0], (above - np.arange(1, n_fix + 1)) / (n_pixels - n_fix), [1.0]])
    return float(_trapezoid(tp, fp))


def other_fixations_map(fixation_maps, index: int) -> np.ndarray:
    """Union of the fixation maps of every frame except ``index`` (the sAUC negative set)."""
    maps = [np.asarray(m) > 0 for m in fixation_maps]
    if not 0 <= index < len(maps):
        raise AnnotationError(f"frame index {index} is out of range for {len(maps)} fixation maps")
    others = np.zeros_like(maps[index])
    for k, fixations in enumerate(maps):
        if k != index:
            if fixations.shape != others.shape:
                raise AnnotationError(f"fixation map {k} has shape {fixations.shape}, expected {others.shape}")
            others |= fixations
    return others


def auc_shuffled(saliency_map, fixation_map, other_map, n_splits: int = 100, step_size: float = 0.1,
                 seed: int = 0) -> float:
    """Shuffled AUC: fixations of this frame against fixations of other frames (``other_map``)."""
    fixations = _as_map(fixation_map, "fixation map") > 0
    others = _as_map(other_map, "other-frames fixation map") > 0
    if others.shape != fixations.shape:
        raise AnnotationError(f"other-frames map shape {others.shape} differs from fixation map {fixations.shape}")
    if not fixations.any():
        return float("nan")
    if not others.any():
        raise AnnotationError("the other-frames fixation map is empty: sAUC needs fixations from other frames")
    if not step_size > 0:
        raise AnnotationError(f"step_size must be positive; got {step_size}")
    saliency = _min_max(_fit_to(_as_map(saliency_map, "saliency map"), fixations.shape)).ravel()
    positives = saliency[fixations.ravel()]
    negative_pool = saliency[others.ravel()]
    n_neg = min(positives.size, negative_pool.size)
    rng = np.random.default_rng(seed)
    areas = np.empty(n_splits)
    for split in range(n_splits):
        negatives = negative_pool[rng.permutation(negative_pool.size)[:n_neg]]
        top = max(positives.max(), negatives.max())
        thresholds = np.arange(0.0, top + step_size * 1e-9, step_size)[::-1]
        tp = np.concatenate([[0.0], (positives[None, :] >= thresholds[:, None]).mean(axis=1), [1.0]])
        fp = np.concatenate([[0.0], (negatives[None, :] >= thresholds[:, None]).mean(axis=1), [1.0]])
        areas[split] = _trapezoid(tp, fp)
    return float(areas.mean())


def nss(saliency_map, fixation_map) -> float:
    """Normalised scanpath saliency: mean standardised saliency at fixations (NaN if undefined)."""
    fixations = _as_map(fixation_map, "fixation map") > 0
    saliency = _fit_to(_as_map(saliency_map, "saliency map"), fixations.shape)
    spread = saliency.std(ddof=1)
    if not fixations.any() or spread == 0:
        return float("nan")
    standardised = (saliency - saliency.mean()) / spread
    return float(standardised[fixations].mean())


def cc(saliency_map, reference_map) -> float:
    """Pearson linear correlation coefficient of two maps (NaN when either is constant)."""
    reference = _as_map(reference_map, "reference map")
    saliency = _fit_to(_as_map(saliency_map, "saliency map"), reference.shape)
    a = saliency - saliency.mean()
    b = reference - reference.mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    if denominator == 0:
        return float("nan")
    return float((a * b).sum() / denominator)


def _as_distribution(values: np.ndarray) -> np.ndarray:
    if not values.any():
        return values
    scaled = _min_max(values)
    total = scaled.sum()
    return scaled / total if total > 0 else scaled


def sim(saliency_map, reference_map) -> float:
    """Similarity (histogram intersection) of two maps after min-max scaling and normalising to sum 1."""
    reference = _as_map(reference_map, "reference map")
    saliency = _fit_to(_as_map(saliency_map, "saliency map"), reference.shape)
    return float(np.minimum(_as_distribution(saliency), _as_distribution(reference)).sum())


def kld(saliency_map, fixation_density) -> float:
    """KL divergence of the fixation density from the saliency map, MIT convention (0 when identical)."""
    density = _as_map(fixation_density, "fixation density")
    saliency = _fit_to(_as_map(saliency_map, "saliency map"), density.shape)
    if (saliency < 0).any() or (density < 0).any():
        raise AnnotationError("KLD needs non-negative maps; the saliency map or fixation density has negative values")
    p = saliency / saliency.sum() if saliency.any() else saliency
    q = density / density.sum() if density.any() else density
    return float(np.sum(q * np.log(MATLAB_EPS + q / (p + MATLAB_EPS))))
