"""The networks' working resolution (torch-free, so command-line parsing stays light)."""

from __future__ import annotations

# Long side of the working resolution (the short side keeps the aspect ratio, rounded to 32); the
# default lives with the other tracking defaults (options.py; docs/benchmarks.md, "Working resolution").
from ..options import DEFAULT_LONG_SIDE


def working_size(height: int, width: int, long_side: int = DEFAULT_LONG_SIDE) -> tuple[int, int]:
    """(h, w) the networks see for a frame of (height, width): long side `long_side`, both multiples of 32."""
    scale = long_side / max(height, width)
    h = max(32, int(round(height * scale / 32)) * 32)
    w = max(32, int(round(width * scale / 32)) * 32)
    return h, w
