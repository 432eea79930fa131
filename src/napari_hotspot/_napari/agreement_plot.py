"""The labelling dock's agreement plot and number formats (matplotlib, no Qt widgets).

``draw_agreement`` draws the annotators' agreement over time of one object (mean pairwise distance,
spread, outliers and PCK per labelled frame) into a matplotlib Figure the dock shows.
"""

from __future__ import annotations

import math

import numpy as np


def draw_agreement(figure, rows) -> None:
    """Redraw ``figure`` with the ``FrameAgreement`` rows of one object."""
    figure.clear()
    axes = figure.add_subplot(111)
    frames = [r.frame for r in rows]
    if rows:
        axes.plot(frames, [r.mean_pairwise_px for r in rows], "o-", label="mean pairwise px")
        axes.plot(frames, [r.spread_px for r in rows], "s--", label="spread px")
        flagged = [r for r in rows if r.outliers]
        if flagged:
            axes.plot([r.frame for r in flagged], [r.spread_px for r in flagged], "rx", ms=10, label="outliers")
        pck_axes = axes.twinx()
        pck_axes.plot(frames, [r.pck for r in rows], "^:", color="tab:green", label="PCK@0.1")
        pck_axes.set_ylim(-0.05, 1.05)
        pck_axes.set_ylabel("PCK", fontsize=8)
        pck_axes.tick_params(labelsize=7)
        handles, labels = axes.get_legend_handles_labels()
        more_handles, more_labels = pck_axes.get_legend_handles_labels()
        axes.legend(handles + more_handles, labels + more_labels, fontsize=7, ncol=4, frameon=False,
                    loc="upper center", bbox_to_anchor=(0.5, -0.32))
    axes.set_xlabel("frame", fontsize=8)
    axes.set_ylabel("px", fontsize=8)
    axes.tick_params(labelsize=7)
    axes.set_title("annotator agreement over time", fontsize=9)


def fmt_number(value, spec: str) -> str:
    return "-" if value is None or not math.isfinite(value) else format(value, spec)


def fmt_point(point) -> str:
    return "-" if point is None else f"{point[0]:.1f}, {point[1]:.1f}"


def annotator_colors(names: list[str]) -> dict[str, np.ndarray]:
    """A tab10 colour per annotator (sorted by name)."""
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return {name: np.array(cmap(i % 10)) for i, name in enumerate(sorted(names))}
