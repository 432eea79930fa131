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


def centroid(mask: np.ndarray) -> np.ndarray | None:
    """(x, y) centroid of a bool mask's pixels (None where it is empty); image moments take half the time
    of the pixels' coordinates (0.13 against 0.30 ms on a 252x448 working-size mask)."""
    m = cv2.moments(np.ascontiguousarray(mask, dtype=np.uint8), binaryImage=True)
    return None if m["m00"] == 0 else np.array([m["m10"] / m["m00"], m["m01"] / m["m00"]])


def snap_into(mask: np.ndarray, xy) -> tuple[float, float]:
    """(x, y) itself where it lies on the image and its pixel (rounded) is in the non-empty bool `mask`,
    else the mask's nearest pixel to it."""
    x, y = float(xy[0]), float(xy[1])
    h, w = mask.shape
    # On the image (pixel centres are integers, so -0.5 to w - 0.5) and on the mask at its pixel.
    on_image = -0.5 <= x <= w - 0.5 and -0.5 <= y <= h - 0.5
    if on_image and mask[min(max(round(y), 0), h - 1), min(max(round(x), 0), w - 1)]:
        return x, y
    ys, xs = np.nonzero(mask)
    k = int(np.argmin((xs - x) ** 2 + (ys - y) ** 2))
    return float(xs[k]), float(ys[k])


def steady_hotspot(xy, mask: np.ndarray, core: np.ndarray, previous_offset, keep: float):
    """One frame of the hotspot's smoothing: its offset from the centroid of the bool `mask` becomes
    (1 - keep) x this frame's + keep x `previous_offset` (the last frame's smoothed offset; None: this
    frame's as it is), and the point is snapped into `core` (the mask without its rim) where it leaves it.
    Returns ((x, y), the offset to carry to the next frame); (None, None) where there is no hotspot or
    mask. Smoothing in the object's own frame of reference follows the object as it moves and keeps a
    hotspot that hops between two salient spots of one object near the middle of them."""
    centre = None if xy is None else centroid(mask)
    if centre is None:
        return None, None
    offset = np.asarray(xy, float) - centre
    if previous_offset is not None:
        offset = (1.0 - keep) * offset + keep * np.asarray(previous_offset, float)
    point = snap_into(core, centre + offset)
    return point, np.asarray(point) - centre


# Edge snapping (`snap_to_edges`): a guided filter (He et al.) of the mask probability with the frame's
# grey levels as the guide. Radius 3 px and eps 1e-3 chosen on the 12 validation-split sequences of
# davis2016-train (docs/benchmarks.md, "Output masks snapped to the frame's edges"), at 360p, where the
# tracker's output is upsampled 1.4 times (256x448 -> 360x640).
EDGE_SNAP_RADIUS = 3
EDGE_SNAP_EPS = 1e-3
EDGE_SNAP_REFERENCE_UPSAMPLING = 360 / 256
# Only where the probability is unsure does the filter move the 0.5 line: the band between these.
_UNSURE = (0.02, 0.98)


def edge_snap_subsample(frame_size: tuple[int, int], work_size: tuple[int, int]) -> int:
    """How many times `snap_to_edges` subsamples a frame of `frame_size` whose probability was upsampled
    from `work_size`: the upsampling over the 1.4 at which the radius was chosen, rounded (1 at 360p and
    480p, 2 at 720p, 3 at 1080p, 6 at 4K). The filter then reaches as far across the coarse output's
    blurred boundary at every frame size (upscaled validation-split copies: docs/benchmarks.md, "Edge
    snapping at high resolution") at about a 360p frame's cost."""
    up = max(frame_size[0] / work_size[0], frame_size[1] / work_size[1])
    return max(1, int(round(up / EDGE_SNAP_REFERENCE_UPSAMPLING)))


def snap_to_edges(prob: np.ndarray, image: np.ndarray, radius: int = EDGE_SNAP_RADIUS,
                  eps: float = EDGE_SNAP_EPS, subsample: int = 1, in_place: bool = False) -> np.ndarray:
    """A mask probability (H, W) upsampled from the tracker's stride-4 output, refined to follow the
    edges of `image` (H, W, 3) uint8 RGB (or (H, W) grey), the frame it belongs to: each pixel's value becomes the local
    linear fit of the probability in the image's grey level over a (2 radius + 1)^2 window, averaged
    (a guided filter), so a boundary the coarse output blurs across an image edge moves onto that
    edge. Computed in the bounding box of the pixels whose probability lies between 0.02 and 0.98,
    grown by the filter's reach; the rest is returned as it is. subsample > 1: the fast guided filter
    (He and Sun 2015): the linear fits are made on the image and probability shrunk that many times,
    with `radius` in the shrunk pixels, and applied to the full-size grey levels (a radius of
    `radius * subsample` frame pixels at a 1/subsample^2 share of the box filters' work).
    float32 (H, W); in_place: written into `prob` where it is a float32 array the caller owns."""
    prob = np.asarray(prob, np.float32)
    if image.shape[:2] != prob.shape:
        raise ValueError(f"snap_to_edges: image {image.shape[:2]} and probability {prob.shape} differ in size")
    step = max(1, int(subsample))
    # The unsure band is at least `step` pixels wide where the output was upsampled that far: every
    # step-th pixel finds its box to within a step.
    band = prob[::step, ::step]
    x, y, w, h = cv2.boundingRect(((band > _UNSURE[0]) & (band < _UNSURE[1])).astype(np.uint8))
    if w == 0 or h == 0:
        return prob
    if step > 1:
        x, y, w, h = (x - 1) * step, (y - 1) * step, (w + 2) * step, (h + 2) * step
    reach = (2 * radius + 2) * step  # two box filters in a row: a pixel's result reads 2 radius around it
    H, W = prob.shape
    x0, y0, x1, y1 = max(0, x - reach), max(0, y - reach), min(W, x + w + reach), min(H, y + h + reach)
    p = prob[y0:y1, x0:x1]
    crop = image[y0:y1, x0:x1]
    grey = crop if crop.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2GRAY)
    k = (2 * radius + 1, 2 * radius + 1)

    def box(v):
        return cv2.blur(v, k, borderType=cv2.BORDER_REFLECT)

    size = (x1 - x0, y1 - y0)
    if step > 1:
        small = (max(1, round(size[0] / step)), max(1, round(size[1] / step)))
        grey_s = cv2.resize(grey, small, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        p_s = cv2.resize(p, small, interpolation=cv2.INTER_AREA)
    else:
        grey_s, p_s = grey.astype(np.float32) / 255.0, p
    mean_i, mean_p = box(grey_s), box(p_s)
    a = (box(grey_s * p_s) - mean_i * mean_p) / (box(grey_s * grey_s) - mean_i * mean_i + eps)
    b = mean_p - a * mean_i
    mean_a, mean_b = box(a), box(b)
    if step > 1:
        mean_a = cv2.resize(mean_a, size, interpolation=cv2.INTER_LINEAR)
        mean_b = cv2.resize(mean_b, size, interpolation=cv2.INTER_LINEAR)
        mean_a *= grey.astype(np.float32) * np.float32(1 / 255.0)
    else:
        mean_a *= grey_s
    out = prob if in_place and prob.flags.writeable else prob.copy()
    np.add(mean_a, mean_b, out=out[y0:y1, x0:x1])
    return out
