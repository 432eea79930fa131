"""Real eye-tracking data for EG-Net: a folder `images/*.jpg|png` + `maps/<stem>.png` (fixation density
maps) or `fixations/<stem>.csv` (x,y per fixation, blurred into a map), encoded once and cached."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import torch

from ..backbone import Encoder, FrameFeatures
from ..guidance import gaussian_points
from ..resolution import working_size
from .data import encode_for_cache, torch_save_atomic


def load_fixation_set(root: Path, cache_dir: Path, log=print):
    root = Path(root)
    images = sorted([*root.glob("images/*.jpg"), *root.glob("images/*.png")])
    if not images:
        raise FileNotFoundError(f"no images under {root / 'images'}: expected images/*.jpg + maps/<stem>.png")
    key = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:12]  # stable across processes
    cache = Path(cache_dir) / f"fixations_{key}.pt"
    if cache.exists():
        return torch.load(cache, weights_only=False)
    enc = Encoder()
    items = []
    for p in images:
        img = cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
        size = working_size(*img.shape[:2])
        grid = (size[0] // 8, size[1] // 8)
        map_path, csv_path = root / "maps" / f"{p.stem}.png", root / "fixations" / f"{p.stem}.csv"
        if map_path.exists():
            m = cv2.imread(str(map_path), cv2.IMREAD_GRAYSCALE).astype(np.float32)
        elif csv_path.exists():
            pts = np.loadtxt(csv_path, delimiter=",", skiprows=1, usecols=(0, 1), ndmin=2)
            m = gaussian_points(pts, img.shape[:2], sigma=0.03 * np.hypot(*img.shape[:2]))
        else:
            raise FileNotFoundError(f"no fixation map {map_path} or fixation CSV {csv_path} for {p}")
        t = cv2.resize(m, (grid[1], grid[0]), interpolation=cv2.INTER_AREA) + 1e-6
        feats = encode_for_cache(enc, [img], size)[0]  # float32 features, as the sequence cache
        items.append((feats, torch.from_numpy(t / t.sum())))
    log(f"encoded {len(items)} fixation images from {root}")
    torch_save_atomic(items, cache)
    return items


def fixation_batch_fn(root: Path, cache_dir: Path, log=print):
    items = load_fixation_set(root, cache_dir, log)

    def batch(_seqs, rng, batch_size):
        picks = [items[int(i)] for i in rng.integers(0, len(items), batch_size)]
        feats = FrameFeatures.stack([p[0].to(torch.float32) for p in picks])
        return feats, torch.stack([p[1] for p in picks])[:, None]

    return batch
