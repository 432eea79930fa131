"""Peer baseline for mask propagation: OpenCV DIS optical flow plus backward warping of the last mask.

For every new frame t the dense flow is computed *from frame t to frame t-1* (DIS, preset MEDIUM), so
each pixel x of frame t knows where it came from: x + flow(x) in frame t-1. The previous mask, as
floats, is sampled there with bilinear ``cv2.remap`` (backward warping leaves no holes) and thresholded
at 0.5. Errors accumulate: the baseline never looks at the object again, which is what it is for.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import cv2
import numpy as np

from napari_hotspot.errors import AnnotationError, VideoError


def to_gray(frame, index: int = 0) -> np.ndarray:
    """uint8 grey image from an (H, W) grey or (H, W, 3/4) RGB(A) frame."""
    image = np.asarray(frame)
    if image.dtype != np.uint8:
        if np.issubdtype(image.dtype, np.floating) and image.size and image.max() <= 1.0:
            image = image * 255.0
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return np.ascontiguousarray(image)
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_RGBA2GRAY)
    raise VideoError(f"frame {index} has shape {image.shape}; expected (H, W), (H, W, 3) or (H, W, 4)")


def warp_mask_backward(mask: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample ``mask`` (float, frame t-1) at x + flow(x) for every pixel x of frame t; 0 off the image."""
    height, width = mask.shape
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return cv2.remap(
        mask.astype(np.float32), grid_x + flow[..., 0], grid_y + flow[..., 1],
        interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0,
    )


def propagate_mask_dis(frames_iterable: Iterable, mask0, preset: int = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM
                       ) -> Iterator[np.ndarray]:
    """Yield one boolean mask per frame: ``mask0`` for the first frame, then DIS-propagated masks.

    ``frames_iterable`` yields (H, W) grey or (H, W, 3) RGB frames (uint8, or floats in [0, 1]); it is
    consumed lazily, one frame at a time, so a long video is never held in memory.
    """
    first_mask = np.asarray(mask0).astype(bool)
    if first_mask.ndim != 2:
        raise AnnotationError(f"mask0 must be a 2-D mask (H, W); got shape {first_mask.shape}")
    flow_engine = cv2.DISOpticalFlow_create(preset)
    previous_gray = None
    previous_mask = first_mask
    for index, frame in enumerate(frames_iterable):
        gray = to_gray(frame, index)
        if gray.shape != first_mask.shape:
            raise VideoError(f"frame {index} is {gray.shape[1]}x{gray.shape[0]} but mask0 is "
                             f"{first_mask.shape[1]}x{first_mask.shape[0]}; they must match")
        if previous_gray is None:
            previous_gray = gray
            yield first_mask.copy()
            continue
        flow = flow_engine.calc(gray, previous_gray, None)  # t -> t-1: where each pixel of t came from
        previous_mask = warp_mask_backward(previous_mask.astype(np.float32), flow) >= 0.5
        previous_gray = gray
        yield previous_mask.copy()
