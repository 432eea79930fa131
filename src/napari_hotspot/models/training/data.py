"""Training data: DAVIS-layout sequences encoded once by the frozen encoder, with augmented views.

Every frame is stored as view 0 (the frame itself) plus `n_views` random affine + colour views, each
with its mask and the 2x3 affine mapping view-0 working pixels to that view, so synthetic motion with
exact point correspondence comes for free (the supervision for hotspot motion).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from ...data_paths import davis_annotations_dir, davis_frames_dir
from ...evaluation.report import read_label_png
from ...fileio import atomic_write
from ..augment import augmented_views
from ..backbone import LEVELS, Encoder, FrameFeatures, encode_views
from ..precision import float32_only
from ..resolution import working_size


def torch_save_atomic(obj, path: Path) -> None:
    """torch.save through `fileio.atomic_write`: an interrupted write (full disk, Ctrl-C) never
    leaves a truncated cache or weights file that a later run would load."""
    with atomic_write(path, "wb", parents=True) as handle:
        torch.save(obj, handle)


def list_sequences(root: Path) -> list[str]:
    img_root = davis_frames_dir(root)
    if not img_root.is_dir():
        raise FileNotFoundError(f"{img_root} does not exist: expected a DAVIS-layout root")
    return sorted(p.name for p in img_root.iterdir() if p.is_dir())


def load_sequence(root: Path, seq: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """RGB frames and binary masks (bool) of one DAVIS sequence at full resolution."""
    img_dir, ann_dir = davis_frames_dir(root, seq), davis_annotations_dir(root, seq)
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


@contextmanager
def _full_float32(device: torch.device):
    """cuDNN runs float32 convolutions in TF32 by default (10 mantissa bits): the cache is encoded in
    full float32 wherever it is built, so a GPU's cache holds the CPU's features to rounding."""
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = saved


def encode_for_cache(encoder: Encoder, images: list[np.ndarray], size: tuple[int, int]) -> list[FrameFeatures]:
    """`backbone.encode_views` in float32 (features independent of the CPU's fast dtype,
    precision.py) on the encoder's device, stored as fp16 per view on the CPU."""
    device = next(encoder.parameters()).device
    with float32_only(), _full_float32(device):
        return [FrameFeatures(*(f[k].to("cpu", torch.float16) for k in LEVELS)) for f in encode_views(encoder, images, size)]


def to_working_size(frame: np.ndarray, mask: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A frame (area-averaged) and its bool mask (nearest) resized to the working size (h, w)."""
    h, w = size
    return (cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA),
            cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool))


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
    all_feats, all_masks, all_aff = [], [], []
    for img, m in zip(frames, masks):
        views_img, views_m, views_a = augmented_views(rng, *to_working_size(img, m, size), n_views,
                                                      max_rotation=max_rotation)
        all_feats.append(encode_for_cache(encoder, views_img, size))
        all_masks.append(np.stack(views_m))
        all_aff.append(np.stack(views_a))
    return EncodedSequence(name, size, all_feats, np.stack(all_masks), np.stack(all_aff))


def build_cache(root: Path, cache_dir: Path, sequences=None, n_views: int = 2, long_side: int = 512, log=print,
                max_rotation: float = 15.0, backbone: str = "lite0", device: str = "cpu"):
    """Encode every sequence once (skipping ones already cached) and return the EncodedSequences.
    device: where the encoder runs (a GPU encodes the training set in seconds; same features to rounding)."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    encoder = Encoder(variant=backbone).to(device)
    out = []
    for i, seq in enumerate(sequences or list_sequences(root)):
        rot = "" if max_rotation == 15.0 else f"_r{max_rotation:g}"
        net = "" if backbone == "lite0" else f"_{backbone}"
        path = cache_dir / f"{seq}_v{n_views}_{long_side}{rot}{net}.pt"
        if path.exists():
            out.append(torch.load(path, weights_only=False))
            continue
        t0 = time.perf_counter()
        frames, masks = load_sequence(root, seq)
        enc = encode_sequence(encoder, frames, masks, seq, n_views=n_views, seed=i, long_side=long_side,
                              max_rotation=max_rotation)
        torch_save_atomic(enc, path)
        log(f"encoded {seq}: {enc.num_frames} frames x {enc.num_views} views in {time.perf_counter() - t0:.1f}s")
        out.append(enc)
    return out


def list_stills(root: Path) -> list[str]:
    """Stems of a still-image saliency set laid out as ``images/<stem>.jpg`` + ``masks/<stem>.png``
    (DUTS-TR); images without a mask are skipped."""
    root = Path(root)
    img_dir, mask_dir = root / "images", root / "masks"
    if not img_dir.is_dir() or not mask_dir.is_dir():
        raise FileNotFoundError(f"{root} needs images/ and masks/ folders (a DUTS-style still-image set)")
    return sorted(p.stem for p in img_dir.iterdir()
                  if p.suffix.lower() in (".jpg", ".jpeg", ".png") and (mask_dir / f"{p.stem}.png").exists())


def load_still(root: Path, stem: str) -> tuple[np.ndarray, np.ndarray]:
    """RGB image and bool mask (mask > 127) of one still; an unreadable or mis-sized pair raises."""
    root = Path(root)
    candidates = [root / "images" / f"{stem}{ext}" for ext in (".jpg", ".jpeg", ".png")]
    path = next((p for p in candidates if p.exists()), candidates[0])
    image = cv2.imread(str(path))
    mask = cv2.imread(str(root / "masks" / f"{stem}.png"), cv2.IMREAD_GRAYSCALE)
    if image is None or mask is None:
        raise ValueError(f"cannot read the still {stem} of {root} (image {path.name}, mask {stem}.png)")
    if image.shape[:2] != mask.shape:
        raise ValueError(f"still {stem} of {root}: image {image.shape[1]}x{image.shape[0]} but mask "
                         f"{mask.shape[1]}x{mask.shape[0]}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB), mask > 127


def build_still_cache(root: Path, cache_dir: Path, n_views: int = 2, chunk: int = 50,
                      size: tuple[int, int] = (288, 512), max_rotation: float = 15.0, log=print,
                      limit: int | None = None, device: str = "cpu") -> list[EncodedSequence]:
    """Still images with masks as training "sequences" of `chunk` unrelated pictures each (marked
    ``synthetic_only``: never paired as video frames, only with their own augmented views, which give
    the tracker exact synthetic motion, as MaskTrack and STM pre-train on images). Every still is
    resized to the video's working `size` (h, w): one batch stacks features of one size."""
    stems = list_stills(root)[:limit]
    if not stems:
        raise FileNotFoundError(f"no image with a mask in {root}")
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    encoder = None
    out = []
    for k in range(0, len(stems), chunk):
        part = stems[k:k + chunk]
        rot = "" if max_rotation == 15.0 else f"_r{max_rotation:g}"
        path = cache_dir / f"stills_{Path(root).name}_{k // chunk:03d}_{len(part)}_v{n_views}_{size[0]}x{size[1]}{rot}.pt"
        if path.exists():
            out.append(torch.load(path, weights_only=False))
            continue
        t0 = time.perf_counter()
        encoder = encoder or Encoder().to(device)
        rng = np.random.default_rng(10_000 + k)
        feats, masks, affines = [], [], []
        for stem in part:
            image, mask = load_still(root, stem)
            views_img, views_m, views_a = augmented_views(rng, *to_working_size(image, mask, size), n_views,
                                                          max_rotation=max_rotation)
            feats.append(encode_for_cache(encoder, views_img, size))
            masks.append(np.stack(views_m))
            affines.append(np.stack(views_a))
        enc = EncodedSequence(f"{Path(root).name}-{k // chunk:03d}", size, feats, np.stack(masks), np.stack(affines),
                              meta={"synthetic_only": True, "stills": part})
        torch_save_atomic(enc, path)
        log(f"encoded stills {enc.name}: {len(part)} images x {enc.num_views} views in {time.perf_counter() - t0:.1f}s")
        out.append(enc)
    return out
