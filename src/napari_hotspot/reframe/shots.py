"""Shot-cut detection from colour histograms of consecutive frames (pure functions, no I/O).

A hard cut changes the colour distribution of the whole frame at once; camera or subject motion
changes it gradually. Each frame is reduced to a normalised HSV histogram of a small thumbnail; the
Bhattacharyya distance between neighbours is compared with an absolute threshold and with the
distances around it (a cut stands out from its neighbourhood, a fast pan does not), and cuts closer
than ``min_shot_length`` frames to the previous one are dropped (flashes, fades).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import cv2
import numpy as np

from napari_hotspot.errors import HotspotError

HIST_BINS = (16, 4, 4)  # hue, saturation, value
THUMB_WIDTH = 96


def frame_histogram(frame: np.ndarray, bins: tuple[int, int, int] = HIST_BINS) -> np.ndarray:
    """Normalised (sum 1) flattened HSV histogram of an (H, W, 3) uint8 RGB frame's thumbnail."""
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise HotspotError(f"expected an (H, W, 3) RGB frame, got shape {frame.shape}")
    h, w = frame.shape[:2]
    if w > THUMB_WIDTH:
        frame = cv2.resize(frame, (THUMB_WIDTH, max(1, round(h * THUMB_WIDTH / w))), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(np.ascontiguousarray(frame, dtype=np.uint8), cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, list(bins), [0, 180, 0, 256, 0, 256]).ravel()
    total = hist.sum()
    return (hist / total).astype(np.float32) if total > 0 else hist.astype(np.float32)


def histogram_distances(histograms: Sequence[np.ndarray]) -> np.ndarray:
    """(T,) Bhattacharyya distance of each frame's histogram to the previous one (0 for frame 0)."""
    out = np.zeros(len(histograms))
    for t in range(1, len(histograms)):
        out[t] = cv2.compareHist(np.asarray(histograms[t - 1], np.float32), np.asarray(histograms[t], np.float32),
                                 cv2.HISTCMP_BHATTACHARYYA)
    return out


def detect_cuts(distances: np.ndarray, threshold: float = 0.35, contrast: float = 3.0, window: int = 8,
                min_shot_length: int = 6) -> list[int]:
    """Frames that start a new shot: ``distances[t]`` (frame t vs t - 1) is above ``threshold`` and
    ``contrast`` times the median distance of the ``window`` frames on either side (excluding t)."""
    distances = np.asarray(distances, dtype=np.float64)
    cuts: list[int] = []
    n = distances.shape[0]
    for t in range(1, n):
        d = distances[t]
        if d < threshold:
            continue
        around = np.concatenate([distances[max(1, t - window):t], distances[t + 1:t + 1 + window]])
        local = float(np.median(around)) if around.size else 0.0
        if d < contrast * local:
            continue
        if cuts and t - cuts[-1] < min_shot_length:
            if d > distances[cuts[-1]]:
                cuts[-1] = t  # keep the stronger of two cuts too close together
            continue
        cuts.append(t)
    return cuts


def detect_cuts_in_frames(frames: Iterable[np.ndarray], **kwargs) -> list[int]:
    """Detect cuts in a stream of RGB frames (one pass; keeps only the small histograms)."""
    return detect_cuts(histogram_distances([frame_histogram(f) for f in frames]), **kwargs)


def shot_ranges(num_frames: int, cuts: Iterable[int]) -> list[tuple[int, int]]:
    """Half-open ``(start, stop)`` frame ranges of the shots separated by ``cuts``."""
    bounds = sorted({int(c) for c in cuts if 0 < int(c) < num_frames})
    edges = [0, *bounds, num_frames]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]
