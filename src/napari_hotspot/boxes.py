"""The one rule for box prompts, shared by every entry point (track/reframe CLI, batch manifest,
the dock, HotspotSession): the two corners may be given in any order (they are sorted), and a box
less than 1 pixel wide or high is refused with the same message everywhere."""

from __future__ import annotations

import math
from collections.abc import Sequence

from .errors import PromptError


def normalize_box(box: Sequence[float]) -> tuple[float, float, float, float]:
    """``(x0, y0, x1, y1)`` with x0 < x1 and y0 < y1 from any two opposite corners, in pixels.

    Raises PromptError for anything but four finite numbers, or a zero-area box (width or height
    under 1 pixel)."""
    try:
        x0, y0, x1, y1 = (float(v) for v in box)
    except (TypeError, ValueError):
        raise PromptError(f"a box is four numbers x0,y0,x1,y1 (pixels), got {box!r}") from None
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        raise PromptError(f"box {x0:g},{y0:g},{x1:g},{y1:g} has a coordinate that is not a finite number")
    x0, x1 = sorted((x0, x1))
    y0, y1 = sorted((y0, y1))
    if x1 - x0 < 1 or y1 - y0 < 1:
        raise PromptError(f"box {x0:g},{y0:g},{x1:g},{y1:g} has zero area: it must be at least 1 pixel wide "
                          f"and 1 pixel high (the corners may be given in any order)")
    return x0, y0, x1, y1
