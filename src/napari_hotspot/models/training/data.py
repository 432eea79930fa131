"""Training data: DAVIS-layout sequences encoded once by the frozen encoder, with augmented views.

Every frame is stored as view 0 (the frame itself) plus `n_views` random affine + colour views, each
with its mask and the 2x3 affine mapping view-0 working pixels to that view, so synthetic motion with
exact point correspondence comes for free (the supervision for hotspot motion).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from ...evaluation.report import read_label_png
from ..augment import colour_jitter, random_affine
from ..backbone import Encoder, FrameFeatures, frame_to_tensor
from ..precision import float32_only
from ..resolution import working_size


def list_sequences(root: Path) -> list[str]:
    root = Path(root)
    img_root = root / "JPEGImages" / "480p"
    if not img_root.is_dir():
        raise FileNotFoundError(f"{img_root} does not exist: expected a DAVIS-layout root")
    return sorted(p.name for p in img_root.iterdir() if p.is_dir())


def load_sequence(root: Path, seq: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """RGB frames and binary masks (bool) of one DAVIS sequence at full resolution."""
    img_dir = Path(root) / "JPEGImages" / "480p" / seq
    ann_dir = Path(root) / "Annotations" / "480p" / seq
    frames, masks = [], []
    for p in sorted(img_dir.glob("*.jpg")):
        frames.append(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB))
        # Any object id counts (DAVIS-2016: 0/255; indexed PNGs: ids, 255 = void when ids exist).
        masks.append(read_label_png(ann_dir / (p.stem + ".png"), ground_truth=True) > 0)
    return frames, masks


@dataclass
class EncodedSequence:
    name: str
    size: tuple[int, int]  # working (h, w)
    feats: list[list[FrameFeatures]]  # [frame][view], fp16
    masks: np.ndarray  # (T, V, h, w) bool at working size
    affines: np.ndarray  # (T, V, 2, 3): view-0 working px -> view px
    meta: dict = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return len(self.feats)

    @property
    def num_views(self) -> int:
        return len(self.feats[0])


def encode_views(encoder: Encoder, images: list[np.ndarray], size: tuple[int, int]) -> list[FrameFeatures]:
    """One batched encoder pass over the views of one frame, stored as fp16 FrameFeatures per view."""
    batch = torch.cat([frame_to_tensor(v, size) for v in images], 0)
    with float32_only():  # features independent of the CPU's fast dtype (precision.py)
        f = encoder(batch).to(torch.float16)
    return [FrameFeatures(*(f[k][i : i + 1] for k in ("s4", "s8", "s16", "s32"))) for i in range(len(images))]


def encode_sequence(
    encoder: Encoder,
    frames: list[np.ndarray],
    masks: list[np.ndarray],
    name: str,
    n_views: int = 2,
    seed: int = 0,
    long_side: int = 512,
    max_rotation: float = 15.0,
) -> EncodedSequence:
    rng = np.random.default_rng(seed)
    size = working_size(*frames[0].shape[:2], long_side=long_side)
    h, w = size
    all_feats, all_masks, all_aff = [], [], []
    for img, m in zip(frames, masks):
        img_w = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        m_w = cv2.resize(m.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
        views_img, views_m, views_a = [img_w], [m_w], [np.array([[1, 0, 0], [0, 1, 0]], np.float32)]
        for _ in range(n_views):
            a = random_affine(rng, size, max_rotation=max_rotation)
            vi = cv2.warpAffine(img_w, a, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
            vm = cv2.warpAffine(m_w.astype(np.uint8), a, (w, h), flags=cv2.INTER_NEAREST, borderValue=0)
            views_img.append(colour_jitter(rng, vi))
            views_m.append(vm.astype(bool))
            views_a.append(a)
        all_feats.append(encode_views(encoder, views_img, size))
        all_masks.append(np.stack(views_m))
        all_aff.append(np.stack(views_a))
    return EncodedSequence(name, size, all_feats, np.stack(all_masks), np.stack(all_aff))


def build_cache(root: Path, cache_dir: Path, sequences=None, n_views: int = 2, long_side: int = 512, log=print,
                max_rotation: float = 15.0):
    """Encode every sequence once (skipping ones already cached) and return the EncodedSequences."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    encoder = Encoder()
    out = []
    for i, seq in enumerate(sequences or list_sequences(root)):
        rot = "" if max_rotation == 15.0 else f"_r{max_rotation:g}"
        path = cache_dir / f"{seq}_v{n_views}_{long_side}{rot}.pt"
        if path.exists():
            out.append(torch.load(path, weights_only=False))
            continue
        t0 = time.perf_counter()
        frames, masks = load_sequence(root, seq)
        enc = encode_sequence(encoder, frames, masks, seq, n_views=n_views, seed=i, long_side=long_side,
                              max_rotation=max_rotation)
        torch.save(enc, path)
        log(f"encoded {seq}: {enc.num_frames} frames x {enc.num_views} views in {time.perf_counter() - t0:.1f}s")
        out.append(enc)
    return out
