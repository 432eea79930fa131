"""Reading per-frame mask PNGs (DAVIS ``Annotations``) lazily, aligned with a frame source's frames."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from napari_hotspot.errors import VideoError
from napari_hotspot.video.lazy_array import LazyFrameArray


def read_mask_png(path: str | os.PathLike) -> np.ndarray:
    """A mask PNG as ``(H, W)`` uint8 object ids (0 = background).

    Indexed (palette) PNGs give their indices (DAVIS-2017 style); binary grayscale 0/255 PNGs
    (DAVIS-2016 style) give 0/1; other grayscale PNGs give their values; colour PNGs give 1
    wherever a pixel is not black.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as img:
            mode = img.mode
            if mode == "LA":
                img = img.getchannel("L")
                mode = "L"
            arr = np.asarray(img)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise VideoError(f"Cannot read mask {path}: not a valid png ({exc})") from exc
    if mode == "P":
        return arr.astype(np.uint8, copy=False)
    if arr.ndim == 3:  # RGB(A): a colour overlay; anything not black is foreground
        return np.any(arr[..., :3] > 0, axis=-1).astype(np.uint8)
    if arr.dtype == bool:
        return arr.astype(np.uint8)
    values = np.unique(arr)
    if values.size <= 2 and values.max(initial=0) == 255:
        return (arr > 0).astype(np.uint8)
    if values.max(initial=0) > 255:
        raise VideoError(f"Mask {path} has object ids up to {values.max()}; at most 255 objects are supported")
    return arr.astype(np.uint8)


def find_davis_annotations(frames_dir: str | os.PathLike) -> Path | None:
    """The ``Annotations`` folder matching a DAVIS-style frame folder, or None.

    ``<root>/JPEGImages/<res>/<seq>`` -> ``<root>/Annotations/<res>/<seq>``, and
    ``<root>/JPEGImages/<seq>`` -> ``<root>/Annotations/<seq>``; only if that folder exists.
    """
    frames_dir = Path(frames_dir)
    parts = frames_dir.resolve().parts
    if "JPEGImages" not in parts[:-1]:
        return None
    pos = len(parts) - 1 - parts[::-1].index("JPEGImages")
    if len(parts) - pos - 1 not in (1, 2):  # <seq> or <res>/<seq> below JPEGImages
        return None
    candidate = Path(*parts[:pos], "Annotations", *parts[pos + 1 :])
    return candidate if candidate.is_dir() else None


def lazy_mask_array(
    annotations_dir: str | os.PathLike, frame_names: list[str], height: int, width: int
) -> LazyFrameArray:
    """``(T, H, W)`` uint8 masks read on demand from ``<annotations_dir>/<frame name>.png``.

    Frames without a mask file read as all background (DAVIS test sets annotate only frame 0).
    Raises VideoError when the folder holds no mask for any frame, or a mask has another size.
    """
    annotations_dir = Path(annotations_dir)
    files = [annotations_dir / f"{name}.png" for name in frame_names]
    if not any(f.is_file() for f in files):
        raise VideoError(f"Annotation folder {annotations_dir} has no <frame name>.png mask for any frame")

    def read(t: int) -> np.ndarray:
        if not files[t].is_file():  # checked per read: masks may be added while the layer is open
            return np.zeros((height, width), np.uint8)
        mask = read_mask_png(files[t])
        if mask.shape != (height, width):
            raise VideoError(f"Mask {files[t]} is {mask.shape[1]}x{mask.shape[0]}, but the frames are {width}x{height}")
        return mask

    return LazyFrameArray(read, len(frame_names), (height, width), np.uint8, name=str(annotations_dir))
