"""The QA plot of the dock: per-frame confidence (and J against ground truth) per object; click to jump.

A matplotlib FigureCanvasQTAgg in a QWidget. It only draws what it is given (series per object,
keyframes, the current frame) and reports clicks as frame numbers; the controller computes the
series. Redraws are coalesced with a short timer, and while only the values change (a propagation run
streaming in) the curves are blitted over the still axes, ticks and legend: 2 ms an update against
about 170 ms for a full redraw on the loaded 2-CPU machine (docs/benchmarks.md, "GUI speed through the
dock"), so the plot never holds up the viewer.
"""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import QTimer, Signal
from qtpy.QtWidgets import QVBoxLayout, QWidget

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

BACKGROUND = "#262930"  # napari's dark theme
FOREGROUND = "#d6d6d6"

#: Wait this long after a change before redrawing (milliseconds); more changes in between merge.
REDRAW_DELAY_MS = 200
Y_RANGE = (-0.02, 1.05)


class QAPlot(QWidget):
    """Confidence per frame (solid) and J (dashed, when ground truth exists) for each object."""

    frame_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.figure = Figure(figsize=(3.2, 2.4), dpi=90, layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(220)
        self.canvas.setMinimumWidth(120)  # the dock's width decides; the plot never widens it
        self.axes = self.figure.add_subplot(111)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas)
        self.canvas.mpl_connect("button_press_event", self._on_click)
        self.canvas.mpl_connect("draw_event", self._on_draw)
        self._background = None  # the figure without its curves, for blitting (`_on_draw`)
        self._keyframe_lines = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.redraw)
        self._data = None
        self._frame_line = None
        self._lines: dict[tuple[int, str], object] = {}  # (object id, "conf" or "J") -> its Line2D
        self._drawn = None  # the structure (`_structure`) of the last full redraw
        self.num_frames = 0
        self.draw_count = 0  # for tests: how often the figure was really redrawn

    def set_data(self, confidence: dict[int, np.ndarray], colors: dict[int, tuple], names: dict[int, str],
                 keyframes: list[int], threshold: float, jaccard: dict[int, np.ndarray] | None = None,
                 num_frames: int = 0, current: int = 0, immediate: bool = False) -> None:
        """Give the plot new series; it redraws soon (or now with ``immediate``)."""
        self._data = (confidence, colors, names, keyframes, threshold, jaccard, current)
        self.num_frames = num_frames
        if immediate:
            self.redraw()
        elif not self._timer.isActive():
            self._timer.start(REDRAW_DELAY_MS)

    def _structure(self):
        """What decides the plot's artists and layout: objects, colours, names, which series have values,
        whether there are keyframes, threshold and length. While only values, keyframes or the current
        frame change (a run streaming in, a click), the artists' data are swapped in place and blitted."""
        if self._data is None or not self.num_frames:
            return None
        _confidence, colors, names, keyframes, threshold, _jaccard, _current = self._data
        series = tuple((oid, kind) for oid, kind, values in self._series()
                       if np.isfinite(values).any())
        return (series, tuple(sorted((k, tuple(v)) for k, v in colors.items())), tuple(sorted(names.items())),
                bool(keyframes), float(threshold), self.num_frames)

    def _series(self):
        confidence, _colors, _names, _keyframes, _threshold, jaccard, _current = self._data
        for oid, values in confidence.items():
            yield oid, "conf", values
            if jaccard is not None and oid in jaccard:
                yield oid, "J", jaccard[oid]

    def redraw(self) -> None:
        self._timer.stop()
        structure = self._structure()
        if structure is not None and structure == self._drawn and self._lines and self._background is not None:
            current = self._data[-1]
            for oid, kind, values in self._series():
                line = self._lines.get((oid, kind))
                if line is not None:
                    line.set_ydata(values)
            if self._frame_line is not None:
                self._frame_line.set_xdata([current, current])
            if self._keyframe_lines is not None:
                self._keyframe_lines.set_segments(self._keyframe_segments(self._data[3]))
            self._blit()  # same axes, ticks and legend: only the curves and markers are drawn again
            self.draw_count += 1
            return
        self._drawn = structure
        self._lines = {}
        self._background = None
        ax = self.axes
        ax.clear()
        for legend in list(self.figure.legends):
            legend.remove()
        self.figure.set_facecolor(BACKGROUND)
        ax.set_facecolor(BACKGROUND)
        for spine in ax.spines.values():
            spine.set_color(FOREGROUND)
        ax.set_ylim(*Y_RANGE)
        ax.set_xlabel("frame", fontsize=8, color=FOREGROUND)
        ax.set_ylabel("confidence / J", fontsize=8, color=FOREGROUND)
        ax.tick_params(labelsize=7, colors=FOREGROUND)
        if structure is None:
            ax.set_xlim(0, 1)
            ax.text(0.5, 0.5, "no video", ha="center", va="center", transform=ax.transAxes, fontsize=8,
                    color=FOREGROUND)
            self._frame_line = self._keyframe_lines = None
            self.canvas.draw_idle()
            self.draw_count += 1
            return
        confidence, colors, names, keyframes, threshold, jaccard, current = self._data
        frames = np.arange(self.num_frames)
        ax.set_xlim(-0.5, self.num_frames - 0.5)
        ax.axhline(threshold, color="0.6", lw=0.9, ls=":", label="low below")
        for oid, kind, values in self._series():
            if not np.isfinite(values).any():
                continue
            color = tuple(c / 255 for c in colors.get(oid, (200, 200, 0)))
            if kind == "conf":
                (line,) = ax.plot(frames, values, color=color, lw=1.2, label=f"{names.get(oid, oid)} conf.",
                                  animated=True)
            else:
                (line,) = ax.plot(frames, values, color=color, lw=1.0, ls="--", label=f"{names.get(oid, oid)} J",
                                  animated=True)
            self._lines[(oid, kind)] = line
        self._keyframe_lines = LineCollection(self._keyframe_segments(keyframes), colors="gold", linewidths=0.8,
                                              alpha=0.7, label="keyframe" if len(keyframes) else "_", animated=True)
        ax.add_collection(self._keyframe_lines, autolim=False)
        self._frame_line = ax.axvline(current, color=FOREGROUND, lw=1.0, alpha=0.7, animated=True)
        handles, labels = ax.get_legend_handles_labels()
        if any(label.endswith(("conf.", " J")) for label in labels):
            # above the axes, not over the curves, in a size that reads at the dock's width
            self.figure.legend(handles, labels, loc="outside upper center", ncol=2, fontsize=8, frameon=False,
                               labelcolor=FOREGROUND, handlelength=1.6, columnspacing=1.0)
        self.canvas.draw_idle()
        self.draw_count += 1

    def _on_draw(self, _event) -> None:
        """After a full draw (a structure change, a resize): keep the still parts as the blit background,
        then draw the curves and the frame marker (animated artists, left out of full draws)."""
        self._background = self.canvas.copy_from_bbox(self.figure.bbox)
        self._draw_animated()

    @staticmethod
    def _keyframe_segments(keyframes) -> list:
        return [[(t, Y_RANGE[0]), (t, Y_RANGE[1])] for t in keyframes]

    def _draw_animated(self) -> None:
        if self._keyframe_lines is not None:
            self.axes.draw_artist(self._keyframe_lines)
        for line in self._lines.values():
            self.axes.draw_artist(line)
        if self._frame_line is not None:
            self.axes.draw_artist(self._frame_line)

    def _blit(self) -> None:
        if self._background is None:
            self.canvas.draw_idle()
            return
        self.canvas.restore_region(self._background)
        self._draw_animated()
        # Schedule the paint, do not force it (matplotlib's blit repaints at once): with napari's GL
        # canvas in the window, every forced repaint composites the whole window (in software under
        # Xvfb: 230 ms a frame step on the 2-CPU machine); scheduled, it joins the canvas's own paint.
        self.canvas.update()

    def set_current_frame(self, frame: int) -> None:
        """Move the current-frame marker without recomputing the series."""
        if self._data is not None:
            confidence, colors, names, keyframes, threshold, jaccard, _ = self._data
            self._data = (confidence, colors, names, keyframes, threshold, jaccard, frame)
        if self._frame_line is not None:
            self._frame_line.set_xdata([frame, frame])
            self._blit()

    def frame_at(self, xdata: float | None) -> int | None:
        """The frame a click at data x falls on, or None outside the plot."""
        if xdata is None or not self.num_frames:
            return None
        return int(min(max(round(xdata), 0), self.num_frames - 1))

    def _on_click(self, event) -> None:
        if event.inaxes is not self.axes:
            return
        frame = self.frame_at(event.xdata)
        if frame is not None:
            self.frame_clicked.emit(frame)
