"""The QA plot of the dock: per-frame confidence (and J against ground truth) per object; click to jump.

A matplotlib FigureCanvasQTAgg in a QWidget. It only draws what it is given (series per object,
keyframes, the current frame) and reports clicks as frame numbers; the controller computes the
series. Redraws are coalesced with a short timer so a streaming propagation run stays cheap.
"""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import QTimer, Signal
from qtpy.QtWidgets import QVBoxLayout, QWidget

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure

BACKGROUND = "#262930"  # napari's dark theme
FOREGROUND = "#d6d6d6"

#: Wait this long after a change before redrawing (milliseconds); more changes in between merge.
REDRAW_DELAY_MS = 200


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
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.redraw)
        self._data = None
        self._frame_line = None
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

    def redraw(self) -> None:
        self._timer.stop()
        ax = self.axes
        ax.clear()
        for legend in list(self.figure.legends):
            legend.remove()
        self.figure.set_facecolor(BACKGROUND)
        ax.set_facecolor(BACKGROUND)
        for spine in ax.spines.values():
            spine.set_color(FOREGROUND)
        ax.set_ylim(-0.02, 1.05)
        ax.set_xlabel("frame", fontsize=8, color=FOREGROUND)
        ax.set_ylabel("confidence / J", fontsize=8, color=FOREGROUND)
        ax.tick_params(labelsize=7, colors=FOREGROUND)
        if self._data is None or not self.num_frames:
            ax.set_xlim(0, 1)
            ax.text(0.5, 0.5, "no video", ha="center", va="center", transform=ax.transAxes, fontsize=8,
                    color=FOREGROUND)
            self._frame_line = None
            self.canvas.draw_idle()
            self.draw_count += 1
            return
        confidence, colors, names, keyframes, threshold, jaccard, current = self._data
        frames = np.arange(self.num_frames)
        ax.set_xlim(-0.5, self.num_frames - 0.5)
        ax.axhline(threshold, color="0.6", lw=0.9, ls=":", label="low below")
        for oid, values in confidence.items():
            color = tuple(c / 255 for c in colors.get(oid, (200, 200, 0)))
            if np.isfinite(values).any():
                ax.plot(frames, values, color=color, lw=1.2, label=f"{names.get(oid, oid)} conf.")
            if jaccard is not None and oid in jaccard and np.isfinite(jaccard[oid]).any():
                ax.plot(frames, jaccard[oid], color=color, lw=1.0, ls="--", label=f"{names.get(oid, oid)} J")
        for i, t in enumerate(keyframes):
            ax.axvline(t, color="gold", lw=0.8, alpha=0.7, label="keyframe" if i == 0 else "_")
        self._frame_line = ax.axvline(current, color=FOREGROUND, lw=1.0, alpha=0.7)
        handles, labels = ax.get_legend_handles_labels()
        if any(label.endswith(("conf.", " J")) for label in labels):
            # above the axes, not over the curves, in a size that reads at the dock's width
            self.figure.legend(handles, labels, loc="outside upper center", ncol=2, fontsize=8, frameon=False,
                               labelcolor=FOREGROUND, handlelength=1.6, columnspacing=1.0)
        self.canvas.draw_idle()
        self.draw_count += 1

    def set_current_frame(self, frame: int) -> None:
        """Move the current-frame marker without recomputing the series."""
        if self._data is not None:
            confidence, colors, names, keyframes, threshold, jaccard, _ = self._data
            self._data = (confidence, colors, names, keyframes, threshold, jaccard, frame)
        if self._frame_line is not None:
            self._frame_line.set_xdata([frame, frame])
            self.canvas.draw_idle()

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
