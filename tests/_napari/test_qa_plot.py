"""The QA plot on its own (Qt, no viewer): a run streaming values in, a new keyframe or a frame change only
blits the curves and markers; a change of objects, series or threshold redraws the whole figure."""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import QEvent, QObject

from napari_hotspot._napari.qa_plot import QAPlot

T = 40


def _show(qtbot):
    plot = QAPlot()
    qtbot.addWidget(plot)
    plot.resize(400, 260)
    plot.show()
    qtbot.waitExposed(plot)
    return plot


def _full_draws(plot, monkeypatch):
    """Count the figure's full draws (a blit does not draw the figure)."""
    counts = []
    real = plot.figure.draw
    monkeypatch.setattr(plot.figure, "draw", lambda renderer: counts.append(1) or real(renderer))
    return counts


def test_streamed_values_blit_the_curves_without_a_full_draw(qtbot, monkeypatch):
    plot = _show(qtbot)
    conf = {1: np.full(T, np.nan)}
    conf[1][:3] = 0.9
    args = ({1: (255, 0, 0)}, {1: "cat"}, [0], 0.5)
    plot.set_data(conf, *args, None, T, 0, immediate=True)
    plot.canvas.draw()  # the pending full draw, which keeps the background for blitting
    full = _full_draws(plot, monkeypatch)
    line = plot._lines[(1, "conf")]
    for t in range(3, 10):  # a run streaming in: same series, new values
        conf[1][t] = 0.2
        plot.set_data(conf, *args, None, T, t, immediate=True)
    assert full == []
    np.testing.assert_array_equal(line.get_ydata()[:10], conf[1][:10])
    assert plot._frame_line.get_xdata()[0] == 9
    assert line in plot.axes.lines and line.get_animated()

    plot.set_data(conf, *args[:2], [0, 5], 0.5, None, T, 9, immediate=True)  # a click made a keyframe
    assert full == [] and [seg[0][0] for seg in plot._keyframe_lines.get_segments()] == [0, 5]

    plot.set_data(conf, *args[:2], [0, 5], 0.7, None, T, 9, immediate=True)  # a new threshold
    plot.canvas.draw()
    assert len(full) == 1 and plot._lines[(1, "conf")] is not line  # artists made anew


def test_a_new_series_redraws_with_its_legend(qtbot):
    plot = _show(qtbot)
    conf = {1: np.full(T, 0.8), 2: np.full(T, np.nan)}
    colors, names = {1: (255, 0, 0), 2: (0, 255, 0)}, {1: "cat", 2: "dog"}
    plot.set_data(conf, colors, names, [0], 0.5, None, T, 0, immediate=True)
    assert set(plot._lines) == {(1, "conf")}  # an object without values has no curve yet
    conf[2][:4] = 0.6
    plot.set_data(conf, colors, names, [0], 0.5, None, T, 3, immediate=True)
    assert set(plot._lines) == {(1, "conf"), (2, "conf")}
    labels = [t.get_text() for t in plot.figure.legends[0].get_texts()]
    assert "dog conf." in labels


def test_a_frame_change_is_painted_with_the_window_not_forced(qtbot, monkeypatch):
    """Moving the frame marker schedules the plot's paint instead of forcing one: with napari's GL canvas
    in the window, each forced repaint composited the whole window (230 ms a frame step under Xvfb)."""
    plot = _show(qtbot)
    plot.set_data({1: np.full(T, 0.8)}, {1: (255, 0, 0)}, {1: "cat"}, [0], 0.5, None, T, 0, immediate=True)
    plot.canvas.draw()
    qtbot.wait(20)
    before = plot.canvas.grab().toImage()
    forced = []
    monkeypatch.setattr(plot.canvas, "repaint", lambda *args: forced.append(args))
    full = _full_draws(plot, monkeypatch)
    paints = []

    class PaintCounter(QObject):
        def eventFilter(self, _obj, event):
            if event.type() == QEvent.Type.Paint:
                paints.append(1)
            return False

    counter = PaintCounter()
    plot.canvas.installEventFilter(counter)
    plot.set_current_frame(30)
    assert paints == []  # not painted inside the call ...
    qtbot.waitUntil(lambda: bool(paints), timeout=2000)  # ... but in the event loop's next paint
    plot.canvas.removeEventFilter(counter)
    assert forced == [] and full == []
    assert plot.canvas.grab().toImage() != before  # the marker moved on screen
