"""The one frame adapter: an array of frames (a napari layer's data, a numpy video) seen as a frame source.

A ``HotspotSession`` reads RGB uint8 frames from a frame source (``num_frames``, ``height``, ``width``,
``frame_names``, ``get_frame``). Files and frame folders have their own sources (``video.sources``);
every other array goes through ``ArrayFrames``, so the tracking dock, the labelling dock and a session
made on a numpy array see the same pixels: uint8 as it is, any other type stretched from its frame's
minimum to its maximum (a float video in [0, 1] and a 16-bit one both fill the range).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_hotspot.errors import VideoError


def to_rgb_uint8(frame: Any, rgb: bool = True) -> np.ndarray:
    """One frame as a contiguous (H, W, 3) uint8 array: a grey frame (``rgb`` False) repeated into three
    channels, an alpha channel dropped, a type other than uint8 stretched from its minimum to its
    maximum (NaN ignored)."""
    frame = np.asarray(frame)
    if not rgb:
        frame = np.repeat(frame[..., None], 3, axis=-1)
    frame = frame[..., :3]
    if frame.dtype != np.uint8:
        f = frame.astype(np.float32)
        finite = np.isfinite(f)
        lo, hi = (float(f[finite].min()), float(f[finite].max())) if finite.any() else (0.0, 0.0)
        frame = np.clip(np.nan_to_num(f - lo) * (255.0 / max(hi - lo, 1e-6)), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(frame)


class ArrayFrames:
    """A (T, H, W) or (T, H, W, 3|4) array (``rgb`` says which; a single (H, W[, C]) image is a
    one-frame video) as a frame source of RGB uint8 frames (``to_rgb_uint8``), read one frame at a time."""

    def __init__(self, data: Any, rgb: bool, name: str = "video"):
        shape = tuple(int(s) for s in data.shape)
        core = shape[:-1] if rgb else shape
        if rgb and shape[-1:] not in ((3,), (4,)):
            raise VideoError(f"layer {name!r} has shape {shape}; expected a video (T, H, W) or (T, H, W, 3)")
        if len(core) == 2:
            core, self._single = (1, *core), True
        else:
            self._single = False
        if len(core) != 3:
            raise VideoError(f"layer {name!r} has shape {shape}; expected a video (T, H, W) or (T, H, W, 3)")
        self._data, self._rgb, self.name = data, rgb, name
        self.num_frames, self.height, self.width = core
        self.frame_names = [f"{i:05d}" for i in range(self.num_frames)]

    def get_frame(self, i: int) -> np.ndarray:
        return to_rgb_uint8(self._data if self._single else self._data[int(i)], self._rgb)


def as_frame_source(data: Any, rgb: bool | None = None, name: str = "video") -> Any:
    """What a session reads frames from: a frame source as it is, an array through ``ArrayFrames``
    (``rgb`` None: a last axis of 3 or 4 is colour)."""
    if hasattr(data, "get_frame") and hasattr(data, "num_frames"):
        return data
    if rgb is None:
        rgb = len(data.shape) == 4 and data.shape[-1] in (3, 4)
    return ArrayFrames(data, bool(rgb), name)
