"""The networks' working resolution (torch-free, so command-line parsing stays light)."""

from __future__ import annotations

# Long side of the working resolution; the short side keeps the aspect ratio, rounded to 32.
# 448 rather than 512: on held-out DAVIS it scored J 0.668 vs 0.658 without adaptation and 0.752 vs
# 0.735 with it, at about 1.5x the speed (docs/benchmarks.md, "Working resolution").
DEFAULT_LONG_SIDE = 448


def working_size(height: int, width: int, long_side: int = DEFAULT_LONG_SIDE) -> tuple[int, int]:
    """(h, w) the networks see for a frame of (height, width): long side `long_side`, both multiples of 32."""
    scale = long_side / max(height, width)
    h = max(32, int(round(height * scale / 32)) * 32)
    w = max(32, int(round(width * scale / 32)) * 32)
    return h, w
