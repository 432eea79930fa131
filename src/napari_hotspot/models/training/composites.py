"""Synthetic training pseudo-videos: an object cut from one training frame, pasted onto another.

Composites put every training object in new contexts (other backgrounds, new scale, often rotated,
even upside down, its own colour shift) next to the background frame's own object, which is now a
distractor: the target is the pasted object alone. A few pseudo-frames per composite move the object
by small known affines (exact point correspondence for the hotspot). Only the sequences given are
used (training sequences: validation stays unseen).

They teach the tracker to follow the template's object but cost one-click accuracy and hurt
Gaze2Mask-Net, so the shipped weights do not use them (`napari-hotspot train --composites N`;
docs/benchmarks.md, "Training data").
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from ..augment import colour_jitter
from ..backbone import Encoder
from ..resolution import working_size
from .data import EncodedSequence, encode_for_cache, load_sequence, to_working_size, torch_save_atomic


def paste_affine(rng: np.random.Generator, mask: np.ndarray, size: tuple[int, int]) -> np.ndarray | None:
    """2x3 affine moving the object in `mask` (working px) to a random place, scale and any rotation."""
    h, w = size
    ys, xs = np.nonzero(mask)
    if len(ys) < 16:
        return None
    cx, cy = xs.mean(), ys.mean()
    extent = max(np.ptp(xs), np.ptp(ys)) + 1
    # Object size after pasting: 15-60% of the short side, whatever it was before.
    s = rng.uniform(0.15, 0.6) * min(h, w) / extent
    a = rng.uniform(-np.pi, np.pi) if rng.random() < 0.5 else np.deg2rad(rng.uniform(-25, 25))
    flip = -1.0 if rng.random() < 0.5 else 1.0
    lin = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) @ np.diag([flip, 1.0])
    tx, ty = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
    t = np.array([tx, ty]) - lin @ np.array([cx, cy])
    return np.concatenate([lin, t[:, None]], 1).astype(np.float32)


def small_motion(rng, centre, size, strength: float = 1.0) -> np.ndarray:
    """3x3 homogeneous random motion about `centre` (x, y): a pseudo-video step between frames."""
    h, w = size
    s = np.exp(rng.normal(0, 0.06 * strength))
    r = np.deg2rad(rng.normal(0, 6 * strength))
    lin = s * np.array([[np.cos(r), -np.sin(r)], [np.sin(r), np.cos(r)]])
    c = np.asarray(centre, float)
    t = c - lin @ c + rng.normal(0, 0.03 * strength, 2) * np.array([w, h])
    return np.vstack([np.concatenate([lin, t[:, None]], 1), [0, 0, 1]])


def make_composite(rng, obj_img, obj_mask, bg_img, size, n_views: int = 1):
    """Paste the object (img, mask at working size) onto the background.

    Returns (images, masks, affines) of `n_views` pseudo-frames: between them the object moves by a
    small random motion and the background by a smaller one; affines (2x3) map the object's points
    in pseudo-frame 0 to each pseudo-frame (exact correspondence: the hotspot's supervision).
    None when the object is too small to paste."""
    h, w = size
    a0 = paste_affine(rng, obj_mask, size)
    if a0 is None:
        return None
    obj, bg = colour_jitter(rng, obj_img), colour_jitter(rng, bg_img)
    a0 = np.vstack([a0, [0, 0, 1]])
    ys, xs = np.nonzero(obj_mask)
    centre = (a0 @ np.array([xs.mean(), ys.mean(), 1.0]))[:2]
    images, masks, affines = [], [], []
    for v in range(n_views):
        motion = np.eye(3) if v == 0 else small_motion(rng, centre, size)
        a = (motion @ a0)[:2].astype(np.float32)
        m = cv2.warpAffine(obj_mask.astype(np.float32), a, (w, h), flags=cv2.INTER_LINEAR)
        if (m > 0.5).sum() < 64:
            return None
        o = cv2.warpAffine(obj, a, (w, h), flags=cv2.INTER_LINEAR)
        b = bg if v == 0 else cv2.warpAffine(bg, small_motion(rng, (w / 2, h / 2), size, 0.3)[:2].astype(np.float32),
                                             (w, h), borderMode=cv2.BORDER_REFLECT_101)
        alpha = cv2.GaussianBlur(m, (0, 0), 0.7)[..., None]  # soft edge: no pasting seam to key on
        images.append(np.clip(alpha * o + (1 - alpha) * b.astype(np.float32), 0, 255).astype(np.uint8))
        masks.append(m > 0.5)
        affines.append(motion[:2].astype(np.float32))  # pseudo-frame 0 px -> pseudo-frame v px
    return images, masks, affines


def build_composites(root: Path, cache_dir: Path, sequences: list[str], n: int, n_views: int = 1,
                     long_side: int = 512, seed: int = 0, log=print) -> EncodedSequence:
    """`n` composites of `n_views` pseudo-frames each from `sequences`, encoded once (cached by
    sequences, n, views, seed and size). Each composite is one "frame" whose views are its pseudo-frames."""
    if not sequences:
        raise ValueError("composites need at least one training sequence to cut objects and backgrounds from")
    cache_dir = Path(cache_dir)
    sequences = sorted(sequences)  # the draws follow this order: one order per cache file
    path = cache_dir / f"composites_{n}x{n_views}_{seed}_{long_side}_{_stable_key(sequences)}.pt"
    if path.exists():
        return torch.load(path, weights_only=False)
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    frames, masks, size = [], [], None
    for seq in sequences:
        f, m = load_sequence(root, seq)
        size = size or working_size(*f[0].shape[:2], long_side=long_side)  # every sequence at one size
        resized = [to_working_size(x, y, size) for x, y in zip(f, m)]
        frames.append([x for x, _ in resized])
        masks.append([y for _, y in resized])
    encoder = Encoder()
    feats, out_masks, out_affines = [], [], []
    for _ in range(50 * n):
        if len(out_masks) == n:
            break
        so, sb = rng.integers(len(sequences), size=2)
        io, ib = rng.integers(len(frames[so])), rng.integers(len(frames[sb]))
        comp = make_composite(rng, frames[so][io], masks[so][io], frames[sb][ib], size, n_views)
        if comp is None:
            continue
        images, views_m, views_a = comp
        feats.append(encode_for_cache(encoder, images, size))
        out_masks.append(np.stack(views_m))
        out_affines.append(np.stack(views_a))
    if len(out_masks) < n:
        raise ValueError(f"only {len(out_masks)} of {n} composites could be made: the objects of {sequences} "
                         "are too small to paste")
    enc = EncodedSequence("composites", size, feats, np.stack(out_masks), np.stack(out_affines),
                          meta={"sources": list(sequences), "seed": seed, "synthetic_only": True})
    torch_save_atomic(enc, path)
    log(f"built {n} composites from {len(sequences)} sequences in {time.perf_counter() - t0:.1f}s")
    return enc


def _stable_key(names) -> str:
    return hashlib.sha1(",".join(sorted(names)).encode()).hexdigest()[:8]
