"""Synthetic part-prompt clips: a real frame under a smooth camera motion, prompted with part of its object.

Issue 19, item 4: a mask of a part (a car's wheel, a bag on a person) must be tracked as given, not
grown into the salient whole beside it. A clip is one frame moved by composed small random motions
(``composites.small_motion``), so the part's true mask is known on every frame. ``benchmarks/
bench_part_prompts.py`` scores them on DAVIS and DUTS; the tests use the synthetic sample video.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..mask_geometry import side_of_line
from .davis import jaccard


def camera_path(rng, size, frames: int, strength: float = 0.5) -> list[np.ndarray]:
    """Composed small motions about the frame centre: 3x3 affines from frame 0 to each frame."""
    from ..models.training.composites import small_motion

    h, w = size
    path, a = [np.eye(3)], np.eye(3)
    for _ in range(frames - 1):
        a = small_motion(rng, (w / 2, h / 2), size, strength) @ a
        path.append(a)
    return path


def warp_clip(image, layers, path):
    """The image and each boolean layer warped by every affine of `path` (reflected borders)."""
    h, w = image.shape[:2]
    frames, masks = [], [[] for _ in layers]
    for a in path:
        frames.append(cv2.warpAffine(image, a[:2], (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
        for out, layer in zip(masks, layers):
            out.append(cv2.warpAffine(layer.astype(np.uint8), a[:2], (w, h), flags=cv2.INTER_NEAREST) > 0)
    return np.stack(frames), [np.stack(m) for m in masks]


def interior_point(rng, mask):
    dist = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
    ys, xs = np.nonzero(dist >= 0.5 * dist.max())
    i = rng.integers(len(ys))
    return float(xs[i]), float(ys[i])


def half_part(rng, mask):
    ys, xs = np.nonzero(mask)
    for _ in range(20):
        t = rng.uniform(0, 2 * np.pi)
        part = mask & ~side_of_line(mask.shape, (xs.mean(), ys.mean()), t)
        if 0.25 <= part.sum() / mask.sum() <= 0.75:
            return part
    return None


def disk_part(rng, mask):
    ys, xs = np.nonzero(mask)
    extent = max(np.ptp(xs), np.ptp(ys)) + 1
    yy, xx = np.mgrid[: mask.shape[0], : mask.shape[1]]
    for _ in range(20):
        x, y = xs[i := rng.integers(len(xs))], ys[i]
        r = rng.uniform(0.2, 0.4) * extent
        part = mask & ((xx - x) ** 2 + (yy - y) ** 2 <= r * r)
        if 0.10 <= part.sum() / mask.sum() <= 0.50:
            return part
    return None


def paste_part(rng, image, mask, still, still_mask):
    """(new image, pasted mask) with the still's object over the DAVIS object, or None."""
    ys, xs = np.nonzero(mask)
    extent = max(np.ptp(xs), np.ptp(ys)) + 1
    sy, sx = np.nonzero(still_mask)
    if len(sy) < 64:
        return None
    s_extent = max(np.ptp(sx), np.ptp(sy)) + 1
    s = rng.uniform(0.3, 0.6) * extent / s_extent
    x, y = interior_point(rng, mask)
    a = np.array([[s, 0, x - s * sx.mean()], [0, s, y - s * sy.mean()]], np.float32)
    h, w = mask.shape
    obj = cv2.warpAffine(still, a, (w, h), flags=cv2.INTER_LINEAR)
    alpha = cv2.warpAffine(still_mask.astype(np.float32), a, (w, h), flags=cv2.INTER_LINEAR)
    pasted = alpha > 0.5
    if pasted.sum() < 64 or (pasted & ~mask).sum() > 0.5 * pasted.sum():
        return None
    out = (image * (1 - alpha[..., None]) + obj * alpha[..., None]).astype(np.uint8)
    return out, pasted


def copy_beside(image: np.ndarray, mask: np.ndarray, gap: float = 0.05):
    """(image with a copy of the object pasted beside it, the copy's mask), or None when the copy
    would not fit in the frame on either side: a look-alike next to the object."""
    h, w = mask.shape
    xs = np.nonzero(mask)[1]
    width = np.ptp(xs) + 1
    shift = int((1 + gap) * width)
    if xs.max() + shift >= w:
        shift = -shift
        if xs.min() + shift < 0:
            return None
    move = np.float32([[1, 0, shift], [0, 1, 0]])
    copy = cv2.warpAffine(mask.astype(np.uint8), move, (w, h), flags=cv2.INTER_NEAREST) > 0
    out = np.where(copy[..., None], cv2.warpAffine(image, move, (w, h)), image)
    return out, copy & ~mask


def part_scores(pred: np.ndarray, parts: np.ndarray, wholes: np.ndarray) -> dict:
    """Mean over frames 1..N-1 of J against the part, J against the whole, and "taken": the share of
    the rest of the whole (whole minus part) that the tracked mask covers."""
    js, jw, taken = [], [], []
    for t in range(1, len(pred)):
        rest = wholes[t] & ~parts[t]
        js.append(jaccard(pred[t], parts[t]))
        jw.append(jaccard(pred[t], wholes[t]))
        if rest.sum() > 0:
            taken.append(float((pred[t] & rest).sum()) / float(rest.sum()))
    return {"part_j": float(np.mean(js)), "whole_j": float(np.mean(jw)),
            "taken": float(np.mean(taken)) if taken else 0.0}
