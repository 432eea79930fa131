"""Object colours: the DAVIS (PASCAL VOC) indexed palette and default colours per object id."""

from __future__ import annotations

import colorsys
from functools import lru_cache

import numpy as np


@lru_cache(maxsize=1)
def _davis_palette_tuple() -> tuple[tuple[int, int, int], ...]:
    # The VOC/DAVIS colour map spreads the bits of the index over the high bits of R, G and B.
    colors = []
    for index in range(256):
        r = g = b = 0
        c = index
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        colors.append((r, g, b))
    return tuple(colors)


def davis_palette() -> np.ndarray:
    """The 256-entry DAVIS palette as a (256, 3) uint8 array; index 0 is black background."""
    return np.array(_davis_palette_tuple(), dtype=np.uint8)


def davis_palette_bytes() -> bytes:
    """The DAVIS palette flattened to the 768 bytes PIL's ``Image.putpalette`` expects."""
    return davis_palette().tobytes()


def default_color(obj_id: int) -> tuple[int, int, int]:
    """The default colour of an object: its DAVIS palette colour, golden-ratio hues beyond 255."""
    if 1 <= obj_id <= 255:
        return _davis_palette_tuple()[obj_id]
    hue = (obj_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 0.95)
    return (round(r * 255), round(g * 255), round(b * 255))
