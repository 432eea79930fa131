"""Regenerate the labelling screenshots of docs/labelling.md from the real application.

Run from the repository root: ``xvfb-run -a python docs/images/labelling_screenshots.py``.
It opens the sample video, runs the tracker from the first ground-truth masks, loads simulated
fixations (the sample's ground-truth hotspots plus observer noise), drives three annotators through
the keyframe protocol with the dock, and saves ``docs/images/labelling_*.png``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent


def simulated_fixations(path: Path, hotspots: np.ndarray, fps: float) -> None:
    """Three observers fixating each object's head on every 4th frame (times in ms, 0.5 s offset)."""
    rng = np.random.default_rng(7)
    rows = ["time_ms,x,y,duration,observer"]
    for frame in range(0, hotspots.shape[0], 4):
        for observer in ("o1", "o2", "o3"):
            for obj in range(hotspots.shape[1]):
                x, y = hotspots[frame, obj, :2] + rng.normal(0, 3.0, 2)
                time_ms = 500 + 1000 * (frame + 0.3) / fps
                rows.append(f"{time_ms:.1f},{x:.1f},{y:.1f},{rng.integers(120, 400)},{observer}")
    path.write_text("\n".join(rows) + "\n")


def main() -> int:
    import warnings

    warnings.filterwarnings("ignore", message=".*PyQt5.*")  # its toast would cover the canvas
    import napari
    from napari.utils.notifications import notification_manager
    from napari._qt.dialogs.qt_notification import NapariQtNotification
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QApplication

    from napari_hotspot._napari.labelling_widget import LabellingWidget
    from napari_hotspot._napari.sample import make_sample_video
    from napari_hotspot.sample_data import make_sample_video as render

    sample = render()
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1560, 980)
    for data, kwargs, kind in make_sample_video():
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    viewer.layers["sample ground truth hotspots"].visible = False
    widget = LabellingWidget(viewer)
    dock = viewer.window.add_dock_widget(widget, name="Hotspot labelling", area="right")
    viewer.window._qt_window.resizeDocks([dock], [640], Qt.Horizontal)
    widget.video_combo.setCurrentText("sample video")
    widget.masks_combo.setCurrentText("sample ground truth")

    def shot(name: str) -> None:
        # napari's PyQt5 deprecation toast would cover the canvas
        for toast in viewer.window._qt_window.findChildren(NapariQtNotification):
            toast.close()
        notification_manager.records.clear()
        for _ in range(5):
            QApplication.processEvents()
        viewer.screenshot(str(OUT / f"labelling_{name}.png"), canvas_only=False)
        print("wrote", OUT / f"labelling_{name}.png")

    # 1. gaze: simulated eye-tracker fixations on the video's time base
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "fixations.csv"
        simulated_fixations(csv_path, sample.hotspots, sample.fps)
        widget.unit_combo.setCurrentText("ms")
        widget.offset_spin.setValue(0.5)
        widget.load_fixations(csv_path)
    viewer.layers["sample ground truth"].visible = False
    viewer.dims.set_current_step(0, 12)
    shot("gaze")

    # 2. tracker pre-fill from the first ground-truth masks
    viewer.layers["fixation density"].visible = False
    viewer.layers["fixations"].visible = False
    widget.run_tracker(block=True)
    print(widget.status.text())

    # 3. annotator A: accept, move, not visible
    widget.extra_edit.setText("25")
    labeller = widget.start_labelling("A")
    rng = np.random.default_rng(0)
    truth = sample.hotspots
    while not labeller.done:
        task = labeller.current
        if (task.object_id, task.index) == (1, 2):
            x, y = truth[task.frame, 0, :2] + (1.5, -1.0)
            widget.move_to(float(x), float(y))
            shot("keyframe")
        x, y, visible = truth[task.frame, task.object_id - 1]
        if not visible:
            widget.mark_not_visible()
        else:
            widget.move_to(float(x + rng.normal(0, 1.5)), float(y + rng.normal(0, 1.5)))
            widget.accept()
    # 4. annotators B and C (C clicks the body instead of the head on frame 30: an outlier),
    #    then the agreement tab
    for name in ("B", "C"):
        labeller = widget.start_labelling(name)
        while not labeller.done:
            task = labeller.current
            x, y, visible = truth[task.frame, task.object_id - 1]
            if (name, task.object_id, task.frame) == ("C", 1, 30):
                x, y = x - 45.0, y + 25.0
            widget.move_to(float(x + rng.normal(0, 3.0)), float(y + rng.normal(0, 3.0)))
            widget.accept()
    widget.tabs.setCurrentIndex(2)
    widget.object_combo.setCurrentIndex(0)
    widget.refresh_agreement()
    viewer.dims.set_current_step(0, 30)
    shot("agreement")
    widget.tabs.setCurrentIndex(0)
    shot("setup")
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
