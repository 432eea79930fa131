"""Online augmentation for Gaze2Mask-Net: samples are frames augmented afresh (by default 85% of
them; the rest the frame itself), encoded in the training step, instead of one of the 3 cached
views per frame (training/data.py).

The cached views limit how many appearances of the dozen training objects the head sees; here every
step draws a new affine + colour view (the same `augment.augmented_views` as the cache and per-video
adaptation) and a new simulated prompt. The encoder stays frozen and runs in float32, so the head is
trained on the features inference computes. Worth it on a GPU (the encoder pass is cheap there); the
same command runs on the CPU, slowly.
"""

from __future__ import annotations

import numpy as np
import torch

from ..augment import augmented_views
from ..backbone import Encoder, frame_to_tensor
from ..precision import float32_only
from ..resolution import working_size
from .data import load_sequence, to_working_size
from .samplers import length_weights, simulate_prompt


class AugmentedFrames(torch.utils.data.IterableDataset):
    """Endless (image, guidance, mask) samples from frames + masks held at the working size.

    A sequence is drawn with probability growing as the square root of its length (as the cached
    sampler), then a frame, one random view of it (`keep_original` of the time the frame itself) and
    a simulated prompt. Each DataLoader worker gets its own random stream from (seed, worker id).
    """

    def __init__(self, frames: list[np.ndarray], masks: list[np.ndarray], seed: int = 0, strength: float = 1.0,
                 max_rotation: float = 15.0, keep_original: float = 0.15, single_click_rate: float = 0.0):
        super().__init__()
        if not frames:
            raise ValueError("online training needs at least one training sequence")
        self.frames, self.masks = frames, masks  # per sequence: (T, h, w, 3) uint8, (T, h, w) bool
        self.size = tuple(masks[0].shape[1:])
        self.seed, self.strength, self.max_rotation = seed, strength, max_rotation
        self.keep_original, self.single_click_rate = keep_original, single_click_rate
        self.p = length_weights([len(f) for f in frames])

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([self.seed, info.id if info else 0])
        while True:
            s = rng.choice(len(self.frames), p=self.p)
            t = int(rng.integers(len(self.frames[s])))
            img, m = self.frames[s][t], self.masks[s][t]
            if rng.random() >= self.keep_original:
                views, masks, _ = augmented_views(rng, img, m, 1, strength=self.strength,
                                                  max_rotation=self.max_rotation)
                img, m = views[1], masks[1]
            guidance = simulate_prompt(m, rng, self.size, single_click_rate=self.single_click_rate)
            yield (frame_to_tensor(img, self.size)[0], torch.from_numpy(guidance),
                   torch.from_numpy(m.astype(np.float32))[None])


def load_working_frames(root, names: list[str], long_side: int = 512):
    """Frames and masks of the named sequences at the working size, as stacked uint8 / bool arrays."""
    frames, masks = [], []
    for name in names:
        fr, ms = load_sequence(root, name)
        size = working_size(*fr[0].shape[:2], long_side=long_side)
        pairs = [to_working_size(f, m, size) for f, m in zip(fr, ms)]
        frames.append(np.stack([p[0] for p in pairs]))
        masks.append(np.stack([p[1] for p in pairs]))
    sizes = {m.shape[1:] for m in masks}
    if len(sizes) > 1:
        raise ValueError(f"online training needs one frame size for all sequences, got {sorted(sizes)}")
    return frames, masks


def gaze2mask_online_batches(dataset: AugmentedFrames, batch_size: int, device: str, workers: int = 0,
                             backbone: str = "lite0"):
    """Endless (features, guidance, mask) batches: the loader's augmented frames encoded on `device`
    by the frozen encoder in float32."""
    encoder = Encoder(variant=backbone).to(device)
    # DataLoader workers run torch single-threaded. (Do not call cv2.setNumThreads in a forked
    # worker: after the parent has used OpenCV's thread pool it deadlocks.)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=workers,
                                         persistent_workers=bool(workers), pin_memory=device.startswith("cuda"))
    tf32 = torch.backends.cudnn.allow_tf32
    try:
        for images, guidance, masks in loader:
            # Features as the CPU computes them at inference: float32, not TF32 (restored for the head).
            torch.backends.cudnn.allow_tf32 = False
            with float32_only():
                feats = encoder(images.to(device, non_blocking=True))
            torch.backends.cudnn.allow_tf32 = tf32
            yield feats, guidance, masks
    finally:
        torch.backends.cudnn.allow_tf32 = tf32
