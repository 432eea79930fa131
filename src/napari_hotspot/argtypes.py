"""argparse value types shared by the sub-commands (points and boxes in pixels)."""

from __future__ import annotations

import argparse


def parse_xy(text: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X,Y (two numbers), got {text!r}") from None
    return x, y


def parse_box(text: str) -> tuple[float, float, float, float]:
    try:
        x0, y0, x1, y1 = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X0,Y0,X1,Y1 (four numbers), got {text!r}") from None
    return x0, y0, x1, y1


def _number_at_least(convert, kind: str, minimum, what: str, maximum=None):
    """An argparse type: `convert(text)` (int or float) within [minimum, maximum]; NaN is refused."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        if not value >= minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
        return value

    return parse


positive_int = _number_at_least(int, "a whole number", 1, "at least 1")
non_negative_int = _number_at_least(int, "a whole number", 0, "0 or more")
non_negative_float = _number_at_least(float, "a number", 0, "0 or more")
frame_rate = _number_at_least(float, "a number", 0.001, "a frame rate above 0", maximum=1000)
# The heads were trained at 512; below about 256 clicks give empty masks, above 2048 the features of
# one frame alone take gigabytes (docs/model_card.md, "Known limits").
long_side_px = _number_at_least(int, "a whole number", 256, "between 256 and 2048", maximum=2048)
#: a share a smoothing keeps of the previous frame's value (below 1: a share of 1 would never move)
smoothing_share = _number_at_least(float, "a number", 0, "between 0 and 0.9", maximum=0.9)
