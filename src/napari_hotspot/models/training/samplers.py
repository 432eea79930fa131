"""Training samples for the three heads, drawn from EncodedSequences (cached encoder features)."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from ..backbone import FrameFeatures
from ..guidance import click_sigma, gaussian_points, make_guidance
from ...mask_geometry import side_of_line
from ..tracking import deepest_point, make_reference
from .data import EncodedSequence


def length_weights(lengths) -> np.ndarray:
    """Sampling probabilities of sequences growing as the square root of their lengths: long videos
    are drawn more often, but not so often that short ones are rarely seen."""
    root = np.sqrt(np.asarray(lengths, float))
    return root / root.sum()


def _pick_sequence(seqs: list[EncodedSequence], rng, real_only: bool = False) -> EncodedSequence:
    """A sequence, with probability growing as the square root of its length. `real_only` skips the
    synthetic-only ones (composites: their "frames" are unrelated pictures, not a video)."""
    if real_only:
        seqs = [s for s in seqs if not s.meta.get("synthetic_only")]
        if not seqs:
            raise ValueError("no real video to pair frames from: train on at least one sequence besides composites")
    return seqs[rng.choice(len(seqs), p=length_weights([s.num_frames for s in seqs]))]


def perturb_mask(mask: np.ndarray, rng) -> np.ndarray:
    """Simulate a tracker's imperfect previous mask: dilate/erode, shift, blobs, sometimes lose it."""
    m = mask.astype(np.uint8)
    h, w = m.shape
    if rng.random() < 0.03:
        return np.zeros_like(mask)
    k = int(rng.integers(1, 12))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    r = rng.random()
    if r < 0.35:
        m = cv2.dilate(m, kernel)
    elif r < 0.7:
        m = cv2.erode(m, kernel)
    if rng.random() < 0.6:
        dx, dy = rng.normal(0, 0.025, 2) * np.array([w, h])
        m = cv2.warpAffine(m, np.float32([[1, 0, dx], [0, 1, dy]]), (w, h), flags=cv2.INTER_NEAREST)
    for _ in range(int(rng.integers(0, 3))):  # spurious or missing blobs
        cx, cy = rng.integers(0, w), rng.integers(0, h)
        rad = int(rng.integers(3, max(4, min(h, w) // 10)))
        cv2.circle(m, (int(cx), int(cy)), rad, int(rng.random() < 0.5), -1)
    return m.astype(bool)


def partial_mask(mask: np.ndarray, rng, point) -> np.ndarray:
    """Part of `mask` around `point` (an interior point), as Gaze2Mask-Net's answer to one click often
    is: the object cut by a disk or a half-plane through the point, or a small seed disk around it
    (the session's prompt-seeded fallback); sometimes with a blob of background. Never empty."""
    m = mask.astype(np.uint8)
    h, w = m.shape
    ys, xs = np.nonzero(m)
    extent = max(4.0, float(np.hypot(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1))) if len(ys) else 8.0
    px, py = int(round(point[0])), int(round(point[1]))
    part = np.zeros_like(m)
    r = rng.random()
    if r < 0.4:  # the object inside a disk around the point
        cv2.circle(part, (px, py), int(rng.uniform(0.15, 0.5) * extent), 1, -1)
        part &= m
    elif r < 0.75:  # the object on one side of a line near the point
        theta = rng.uniform(0, 2 * np.pi)
        part = side_of_line((h, w), (px, py), theta, rng.uniform(0.0, 0.25) * extent).astype(np.uint8) & m
    else:  # a seed disk around the point, background included
        cv2.circle(part, (px, py), int(rng.uniform(0.02, 0.05) * np.hypot(h, w)) + 1, 1, -1)
    n, lab = cv2.connectedComponents(part)
    if n > 2 and 0 <= py < h and 0 <= px < w and lab[py, px] > 0:
        part = (lab == lab[py, px]).astype(np.uint8)  # the piece that holds the click
    if rng.random() < 0.3:  # a blob of background stuck to it
        bx, by = rng.integers(0, w), rng.integers(0, h)
        cv2.circle(part, (int(bx), int(by)), int(rng.integers(3, max(4, min(h, w) // 12))), 1, -1)
    if not part.any():
        cv2.circle(part, (px, py), 4, 1, -1)
    return part.astype(bool)


def random_interior_point(mask: np.ndarray, rng):
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return None
    # Prefer points away from the boundary (a hotspot sits inside the object).
    dist = cv2.distanceTransform(np.pad(mask.astype(np.uint8), 1), cv2.DIST_L2, 3)[1:-1, 1:-1][ys, xs].astype(np.float64)
    p = dist / dist.sum() if dist.sum() > 0 else None
    i = rng.choice(len(ys), p=p)
    return float(xs[i]), float(ys[i])


def map_point(affine_from: np.ndarray, affine_to: np.ndarray, xy):
    """Map a point in view `from` to view `to` (affines map view-0 px to view px)."""
    a_from = np.vstack([affine_from, [0, 0, 1]])
    a_to = np.vstack([affine_to, [0, 0, 1]])
    p = a_to @ np.linalg.inv(a_from) @ np.array([xy[0], xy[1], 1.0])
    return float(p[0]), float(p[1])


def completion_sample(seqs, rng):
    """The session's prompt refinement as a training sample: the template is a frame with part of its
    object (`partial_mask` around a click) as both anchor and previous mask, the search frame is that
    same frame (same view, or another augmented view of it), the target is the whole object. Returned
    as `pair_sample` does (no hotspot target); None when the drawn view has no object."""
    s = _pick_sequence(seqs, rng, real_only=True)
    i, va = int(rng.integers(s.num_frames)), int(rng.integers(s.num_views))
    vt = va if rng.random() < 0.6 else int(rng.integers(s.num_views))
    m_a = s.masks[i, va]
    click = (random_interior_point(m_a, rng) if rng.random() < 0.5 else deepest_point(m_a)) if m_a.any() else None
    if click is None:
        return None
    ref = make_reference(s.feats[i][va].to(torch.float32), torch.from_numpy(partial_mask(m_a, rng, click).astype(np.float32)), click)
    return (s.feats[i][vt].to(torch.float32), ref, ref, torch.from_numpy(s.masks[i, vt].astype(np.float32)),
            (0.0, 0.0), False)


def object_part(mask: np.ndarray, rng, point) -> np.ndarray | None:
    """A part of the object as a user would prompt one (issue 19, item 4): the object inside a disk
    around an interior point (10-50% of its extent) or on one side of a line near it, with no
    background. None when the cut leaves under 10% or over 80% of the object (not a part)."""
    m = mask.astype(np.uint8)
    h, w = m.shape
    ys, xs = np.nonzero(m)
    extent = max(4.0, float(np.hypot(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)))
    px, py = int(round(point[0])), int(round(point[1]))
    if rng.random() < 0.5:
        part = np.zeros_like(m)
        cv2.circle(part, (px, py), int(rng.uniform(0.1, 0.5) * extent), 1, -1)
    else:
        theta = rng.uniform(0, 2 * np.pi)
        part = side_of_line((h, w), (px, py), theta, rng.uniform(-0.1, 0.2) * extent).astype(np.uint8)
    part &= m
    share = part.sum() / max(1, m.sum())
    return part.astype(bool) if 0.1 <= share <= 0.8 else None


def part_sample(seqs, rng):
    """A part of an object as the prompt, tracked as that part (issue 19, item 4: a car's wheel, a bag
    on a person): one frame or still against its own augmented views, whose known warps give the
    part's exact mask in every view (real video has no part masks). Anchor = the part on view 0,
    previous = the part on another view, perturbed, target = the part on a third view, hotspot at a
    point of the part. Returned as `pair_sample` does; None when the drawn object gives no part."""
    s = _pick_sequence(seqs, rng)
    i, V = int(rng.integers(s.num_frames)), s.num_views
    vp, vt = int(rng.integers(1, V)), int(rng.integers(1, V))
    m_a = s.masks[i, 0]
    point = random_interior_point(m_a, rng) if m_a.any() else None
    part_a = object_part(m_a, rng, point) if point is not None else None
    if part_a is None:
        return None
    h, w = m_a.shape

    def in_view(v):  # the part warped into view v (affines map view-0 px to view px), inside the object there
        moved = cv2.warpAffine(part_a.astype(np.uint8), s.affines[i, v].astype(np.float32), (w, h), flags=cv2.INTER_NEAREST)
        return moved.astype(bool) & s.masks[i, v]

    part_p, part_t = in_view(vp), in_view(vt)
    hot_a = deepest_point(part_a)
    hot_p = map_point(s.affines[i, 0], s.affines[i, vp], hot_a)
    hot_t = map_point(s.affines[i, 0], s.affines[i, vt], hot_a)
    valid = bool(part_t.any()) and 0 <= hot_t[0] < w and 0 <= hot_t[1] < h
    fa, fp, ft = (s.feats[i][v].to(torch.float32) for v in (0, vp, vt))
    return (ft, make_reference(fa, torch.from_numpy(part_a.astype(np.float32)), hot_a),
            make_reference(fp, torch.from_numpy(perturb_mask(part_p, rng).astype(np.float32)), hot_p),
            torch.from_numpy(part_t.astype(np.float32)), hot_t if valid else (0.0, 0.0), valid)


def pair_sample(seqs, rng, synthetic_rate: float):
    """A pair of frames of a video (or, `synthetic_rate` of the time, augmented views of one frame,
    with the hotspot's known motion): (search features, anchor reference, previous-frame reference,
    target mask, hotspot target (x, y), whether that target is valid)."""
    synthetic = rng.random() < synthetic_rate
    s = _pick_sequence(seqs, rng, real_only=not synthetic)
    T, V = s.num_frames, s.num_views
    if synthetic:
        i = int(rng.integers(T))
        a = p = t = i
        va, vp, vt = 0, int(rng.integers(1, V)), int(rng.integers(1, V))
    else:
        t = int(rng.integers(T))
        step = int(rng.integers(1, 4)) * (1 if rng.random() < 0.5 else -1)
        p = int(np.clip(t - step, 0, T - 1))
        a = int(rng.integers(T))
        if rng.random() < 0.6:
            va = vp = vt = 0
        else:
            va, vp, vt = (int(v) for v in rng.integers(0, V, 3))
    m_a, m_p, m_t = s.masks[a, va], s.masks[p, vp], s.masks[t, vt]
    if synthetic:
        hot_a = random_interior_point(m_a, rng) if rng.random() < 0.7 else deepest_point(m_a)
        hot_p = map_point(s.affines[a, va], s.affines[p, vp], hot_a) if hot_a else None
        hot_t = map_point(s.affines[a, va], s.affines[t, vt], hot_a) if hot_a else None
    else:
        hot_a, hot_t = deepest_point(m_a), None
    prev_mask = perturb_mask(m_p, rng)
    if not synthetic:
        hot_p = deepest_point(prev_mask)
    fa, fp, ft = s.feats[a][va].to(torch.float32), s.feats[p][vp].to(torch.float32), s.feats[t][vt]
    valid = hot_t is not None and 0 <= hot_t[0] < m_t.shape[1] and 0 <= hot_t[1] < m_t.shape[0]
    return (ft.to(torch.float32), make_reference(fa, torch.from_numpy(m_a.astype(np.float32)), hot_a),
            make_reference(fp, torch.from_numpy(prev_mask.astype(np.float32)), hot_p),
            torch.from_numpy(m_t.astype(np.float32)), hot_t if valid else (0.0, 0.0), valid)


def tracker_batch(seqs, rng, batch_size: int, synthetic_rate: float = 0.3, completion_rate: float = 0.0,
                  part_rate: float = 0.0):
    """`pair_sample`s, and `completion_rate` of the time a `completion_sample`, `part_rate` of the time a
    `part_sample` instead."""
    feats, refs_a, refs_p, masks, hot_targets, hot_valid = columns = [], [], [], [], [], []
    for _ in range(batch_size):
        sample = completion_sample(seqs, rng) if completion_rate and rng.random() < completion_rate else None
        if sample is None and part_rate and rng.random() < part_rate:
            sample = part_sample(seqs, rng)
        for column, value in zip(columns, sample or pair_sample(seqs, rng, synthetic_rate)):
            column.append(value)
    return (FrameFeatures.stack(feats), refs_a, refs_p, torch.stack(masks)[:, None],
            torch.tensor(hot_targets, dtype=torch.float32), torch.tensor(hot_valid))


def search_window(target: torch.Tensor, rng, crop8=(24, 40)):
    """One search window of crop8 stride-8 cells for a tracker batch, centred near the objects.

    Training crops the search side only: templates stay whole, so matching is unchanged, while the
    correlation and decoder cost drop by the area ratio. Returns stride-8 (row, column) slices."""
    h8, w8 = target.shape[-2] // 8, target.shape[-1] // 8
    ch, cw = min(crop8[0], h8) // 2 * 2, min(crop8[1], w8) // 2 * 2
    fg = target.amax(0)[0] > 0.5
    ys, xs = torch.nonzero(fg, as_tuple=True)
    cy, cx = (float(ys.float().mean()) / 8, float(xs.float().mean()) / 8) if len(ys) else (h8 / 2, w8 / 2)
    cy += rng.normal(0, ch / 4)
    cx += rng.normal(0, cw / 4)
    y0 = int(np.clip(round(cy - ch / 2), 0, h8 - ch)) // 2 * 2
    x0 = int(np.clip(round(cx - cw / 2), 0, w8 - cw)) // 2 * 2
    return slice(y0, y0 + ch), slice(x0, x0 + cw), (ch, cw)


def _scaled(sl: slice, k: float) -> slice:
    return slice(int(sl.start * k), int(sl.stop * k))


def crop_features(feats: FrameFeatures, ys: slice, xs: slice) -> FrameFeatures:
    return FrameFeatures(
        feats.s4[..., _scaled(ys, 2), _scaled(xs, 2)],
        feats.s8[..., ys, xs],
        feats.s16[..., _scaled(ys, 0.5), _scaled(xs, 0.5)],
        feats.s32,
    )


def crop_targets(target, hot_xy, hot_valid, ys: slice, xs: slice):
    tgt = target[..., _scaled(ys, 8), _scaled(xs, 8)]
    hxy = hot_xy - torch.tensor([8.0 * xs.start, 8.0 * ys.start])
    h, w = tgt.shape[-2:]
    valid = hot_valid & (hxy[:, 0] >= 0) & (hxy[:, 1] >= 0) & (hxy[:, 0] < w) & (hxy[:, 1] < h)
    return tgt, hxy, valid


def simulate_prompt(mask: np.ndarray, rng, size, single_click_rate: float = 0.0) -> np.ndarray:
    """A random prompt for Gaze2Mask-Net training: clicks (first at the deepest point, jittered),
    a jittered box, or a pseudo-gaze map; `single_click_rate` of the time exactly one click (the
    prompt the one-click benchmark gives)."""
    h, w = size
    ys, xs = np.nonzero(mask)
    if single_click_rate and rng.random() < single_click_rate:
        mode = "single"
    else:
        mode = rng.choice(["clicks", "box", "gaze"], p=[0.55, 0.25, 0.2])
    if len(ys) == 0:
        return make_guidance(size)
    obj = np.hypot(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
    if mode == "box":
        x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
        j = rng.normal(0, 0.04, 4) * obj
        return make_guidance(size, box_xyxy=(x0 + j[0], y0 + j[1], x1 + j[2], y1 + j[3]))
    dp = deepest_point(mask)
    pos = [(dp[0] + rng.normal(0, 0.03 * obj), dp[1] + rng.normal(0, 0.03 * obj))]
    if mode == "single":
        return make_guidance(size, positive_xy=pos)
    if mode == "gaze":
        pts = [pos[0]] + [random_interior_point(mask, rng) for _ in range(int(rng.integers(0, 4)))]
        sigma = max(click_sigma(size), 0.08 * obj)
        gm = gaussian_points(np.array(pts), size, sigma, weights=rng.uniform(0.5, 1.0, len(pts)))
        return make_guidance(size, gaze_map=gm)
    for _ in range(int(rng.integers(0, 3))):
        pos.append(random_interior_point(mask, rng))
    neg = []
    ring = cv2.dilate(mask.astype(np.uint8), np.ones((25, 25), np.uint8)).astype(bool) & ~mask
    nys, nxs = np.nonzero(ring)
    for _ in range(int(rng.integers(0, 3))):
        if len(nys):
            k = rng.integers(len(nys))
            neg.append((float(nxs[k]), float(nys[k])))
    return make_guidance(size, positive_xy=pos, negative_xy=neg)


def gaze2mask_batch(seqs, rng, batch_size: int, single_click_rate: float = 0.0):
    feats, guid, masks = [], [], []
    for _ in range(batch_size):
        s = _pick_sequence(seqs, rng)
        i, v = int(rng.integers(s.num_frames)), int(rng.integers(s.num_views))
        m = s.masks[i, v]
        guid.append(torch.from_numpy(simulate_prompt(m, rng, s.size, single_click_rate)))
        feats.append(s.feats[i][v].to(torch.float32))
        masks.append(torch.from_numpy(m.astype(np.float32)))
    return FrameFeatures.stack(feats), torch.stack(guid), torch.stack(masks)[:, None]


def pseudo_gaze_target(mask: np.ndarray, grid) -> np.ndarray:
    """Pseudo eye-gaze distribution from an object mask (no fixation data here): a Gaussian at the
    object's deepest interior point (sigma 15% of its size) mixed 70/30 with the blurred mask."""
    h8, w8 = grid
    m = cv2.resize(mask.astype(np.float32), (w8, h8), interpolation=cv2.INTER_AREA)
    if m.sum() <= 0:
        t = np.ones((h8, w8), np.float32)
        return t / t.sum()
    dp = deepest_point(m > 0.5) or (float(np.argmax(m.max(0))), float(np.argmax(m.max(1))))
    ys, xs = np.nonzero(m > 0.5) if (m > 0.5).any() else np.nonzero(m > 0)
    obj = np.hypot(np.ptp(xs) + 1, np.ptp(ys) + 1)
    g = gaussian_points(np.array([dp]), (h8, w8), max(1.0, 0.15 * obj))
    t = 0.7 * g / g.sum() + 0.3 * m / m.sum()
    return (t / t.sum()).astype(np.float32)


def egnet_batch(seqs, rng, batch_size: int, stride: int = 8):
    feats, targets = [], []
    for _ in range(batch_size):
        s = _pick_sequence(seqs, rng)
        i, v = int(rng.integers(s.num_frames)), int(rng.integers(s.num_views))
        grid = (s.size[0] // stride, s.size[1] // stride)
        targets.append(torch.from_numpy(pseudo_gaze_target(s.masks[i, v], grid)))
        feats.append(s.feats[i][v].to(torch.float32))
    return FrameFeatures.stack(feats), torch.stack(targets)[:, None]


def hotspot_target_grid(xy: torch.Tensor, grid, stride: int = 8, sigma: float = 1.0) -> torch.Tensor:
    """(B, 2) working-px points -> (B, h8*w8) normalised Gaussian targets on the stride-8 grid."""
    h8, w8 = grid
    cx = (xy[:, 0] + 0.5) / stride - 0.5
    cy = (xy[:, 1] + 0.5) / stride - 0.5
    ys = torch.arange(h8, dtype=torch.float32)[None, :, None]
    xs = torch.arange(w8, dtype=torch.float32)[None, None, :]
    g = torch.exp(-((xs - cx[:, None, None]) ** 2 + (ys - cy[:, None, None]) ** 2) / (2 * sigma**2))
    g = g.flatten(1)
    return g / g.sum(1, keepdim=True).clamp_min(1e-8)

