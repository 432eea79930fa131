"""Mask geometry without torch: distance to the boundary and the deepest interior point (shared by the
tracker, evaluation and reframing, which must not import torch)."""

from __future__ import annotations

import cv2
import numpy as np


def boundary_distance(mask: np.ndarray, mask_size: int = 5) -> np.ndarray:
    """Per pixel of a bool mask, its distance to the mask's boundary (the image border counts as
    boundary); 0 outside. mask_size: OpenCV's distance-transform mask (3 fast, 5 more exact)."""
    return cv2.distanceTransform(np.pad(np.asarray(mask).astype(np.uint8), 1), cv2.DIST_L2, mask_size)[1:-1, 1:-1]


def side_of_line(shape: tuple[int, int], point, theta: float, offset: float = 0.0) -> np.ndarray:
    """Bool (h, w): the pixels on one side of the line through ``point`` (x, y) at angle ``theta``,
    moved ``offset`` pixels along its normal: (x - px) cos theta + (y - py) sin theta <= offset. The cut
    of the parts that training, the part-prompt clips and the recovery benchmark make."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (xx - point[0]) * np.cos(theta) + (yy - point[1]) * np.sin(theta) <= offset


def deepest_point(mask: np.ndarray) -> tuple[float, float] | None:
    """(x, y) of the interior point farthest from the mask boundary (None for an empty mask): a stable
    stand-in for a hotspot where only a mask is known."""
    mask = np.asarray(mask)
    if not mask.any():
        return None
    dist = boundary_distance(mask)
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return float(x), float(y)
