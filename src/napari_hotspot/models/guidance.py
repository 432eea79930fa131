"""Guidance maps for Gaze2Mask-Net: clicks, boxes and gaze fixations rendered as (3, h, w) maps.

Channel 0: positive evidence (positive clicks, gaze fixations or an EG-Net gaze map), channel 1:
negative clicks, channel 2: box interior. Coordinates are in working-resolution pixels.
"""

from __future__ import annotations

import numpy as np

GUIDANCE_CHANNELS = 3


def gaussian_points(points_xy: np.ndarray, size: tuple[int, int], sigma: float, weights=None) -> np.ndarray:
    """Max over Gaussians (peak 1 times weight) centred on points (N, 2) in (x, y), as (h, w) float32."""
    h, w = size
    out = np.zeros((h, w), np.float32)
    if len(points_xy) == 0:
        return out
    ys = np.arange(h, dtype=np.float32)[:, None]
    xs = np.arange(w, dtype=np.float32)[None, :]
    weights = np.ones(len(points_xy), np.float32) if weights is None else np.asarray(weights, np.float32)
    for (x, y), wt in zip(np.asarray(points_xy, np.float32), weights):
        g = np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2)) * wt
        np.maximum(out, g, out=out)
    return out


def click_sigma(size: tuple[int, int]) -> float:
    """Click blob radius: 2% of the working diagonal (about 10 px at the default 256x448)."""
    return 0.02 * float(np.hypot(*size))


def make_guidance(
    size: tuple[int, int],
    positive_xy=(),
    negative_xy=(),
    box_xyxy=None,
    gaze_map: np.ndarray | None = None,
) -> np.ndarray:
    """Render prompts (already in working-resolution pixels) into a (3, h, w) float32 guidance map."""
    h, w = size
    sigma = click_sigma(size)
    g = np.zeros((GUIDANCE_CHANNELS, h, w), np.float32)
    pos = np.asarray(positive_xy, np.float32).reshape(-1, 2)
    neg = np.asarray(negative_xy, np.float32).reshape(-1, 2)
    g[0] = gaussian_points(pos, size, sigma)
    if gaze_map is not None:
        gm = np.asarray(gaze_map, np.float32)
        if gm.shape != (h, w):
            raise ValueError(f"gaze map shape {gm.shape} != working size {(h, w)}")
        gm = gm / max(float(gm.max()), 1e-6)
        np.maximum(g[0], gm, out=g[0])
    g[1] = gaussian_points(neg, size, sigma)
    if box_xyxy is not None:
        x0, y0, x1, y1 = [float(v) for v in box_xyxy]
        xi0, xi1 = int(np.clip(np.floor(min(x0, x1)), 0, w)), int(np.clip(np.ceil(max(x0, x1)), 0, w))
        yi0, yi1 = int(np.clip(np.floor(min(y0, y1)), 0, h)), int(np.clip(np.ceil(max(y0, y1)), 0, h))
        g[2, yi0:yi1, xi0:xi1] = 1.0
    return g
